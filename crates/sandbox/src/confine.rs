//! What a sandbox worker gives up before it runs a program: core dumps, ptrace, new file
//! descriptors, address space and CPU beyond its limits, privileges, and every system call
//! but the few it needs to compute, allocate and talk over its pipes (seccomp-bpf, with
//! seccompiler: a violation kills the process with SIGSYS).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// Why confinement failed (the worker then exits without running anything).
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// A resource limit could not be set.
    #[error("cannot set {0}: {1}")]
    Limit(&'static str, std::io::Error),
    /// A process attribute could not be set.
    #[error("cannot set {0}: {1}")]
    Attribute(&'static str, std::io::Error),
    /// The system-call filter could not be built or installed.
    #[error("cannot install the system-call filter: {0}")]
    Seccomp(String),
}

fn set_limit(
    resource: libc::__rlimit_resource_t,
    name: &'static str,
    value: u64,
) -> Result<(), ConfineError> {
    let limit = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(ConfineError::Limit(name, std::io::Error::last_os_error()));
    }
    Ok(())
}

fn prctl(
    option: libc::c_int,
    value: libc::c_ulong,
    name: &'static str,
) -> Result<(), ConfineError> {
    // SAFETY: these prctl options take plain integers.
    if unsafe { libc::prctl(option, value, 0, 0, 0) } != 0 {
        return Err(ConfineError::Attribute(
            name,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The system calls a worker may make once confined: read and write its pipes, manage
/// memory (never executable), wait on futexes and clocks, handle signals, exit.
fn allowed() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_writev,
        libc::SYS_close,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_brk,
        libc::SYS_madvise,
        libc::SYS_futex,
        libc::SYS_clock_gettime,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_sched_yield,
        libc::SYS_getrandom,
        libc::SYS_gettid,
        libc::SYS_getpid,
        libc::SYS_getrusage,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_sigaltstack,
        libc::SYS_restart_syscall,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.push(libc::SYS_poll);
    calls.push(libc::SYS_ppoll);
    calls
}

/// The filter: the allowed calls, `mmap`/`mprotect` only without `PROT_EXEC`, everything
/// else kills the process.
fn filter() -> Result<BpfProgram, ConfineError> {
    let err = |e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        allowed().into_iter().map(|c| (c, Vec::new())).collect();
    // Memory, but never executable memory: QuickJS has no JIT, so nothing needs it.
    let no_exec = || {
        SeccompCondition::new(
            2,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )
        .and_then(|c| SeccompRule::new(vec![c]))
    };
    rules.insert(libc::SYS_mmap, vec![no_exec().map_err(err)?]);
    rules.insert(libc::SYS_mprotect, vec![no_exec().map_err(err)?]);
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string()))?;
    let f = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(err)?;
    f.try_into().map_err(err)
}

/// Confines the calling process, all of its threads included. `memory` is a program's heap
/// limit (the address space gets room above it, a backstop behind the interpreter's own
/// limit); `cpu_seconds` is the CPU time the process may use in all.
pub fn confine(memory: usize, cpu_seconds: u64) -> Result<(), ConfineError> {
    let program = filter()?;
    set_limit(libc::RLIMIT_CORE, "RLIMIT_CORE", 0)?;
    // Room for the interpreter's heap, the JSON of tool results and thread stacks.
    set_limit(
        libc::RLIMIT_AS,
        "RLIMIT_AS",
        (memory as u64).saturating_mul(3) + (1 << 30),
    )?;
    set_limit(libc::RLIMIT_CPU, "RLIMIT_CPU", cpu_seconds)?;
    set_limit(libc::RLIMIT_NOFILE, "RLIMIT_NOFILE", 0)?;
    set_limit(libc::RLIMIT_FSIZE, "RLIMIT_FSIZE", 0)?;
    prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE")?;
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")?;
    seccompiler::apply_filter_all_threads(&program)
        .map_err(|e| ConfineError::Seccomp(e.to_string()))
}

/// Whether this kernel enforces seccomp filters (the server checks before it relies on them).
pub fn supported() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointer; it fails with EINVAL without seccomp.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}
