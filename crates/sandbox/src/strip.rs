//! From the model's TypeScript to JavaScript QuickJS runs: code fences removed, types
//! stripped by oxc (not checked), and a source map back to the model's own lines.

use std::path::{Path, PathBuf};

use oxc::allocator::Allocator;
use oxc::codegen::{Codegen, CodegenOptions};
use oxc::parser::{ParseOptions, Parser};
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{TransformOptions, Transformer};

/// Where a position in the generated JavaScript came from in the model's source.
#[derive(Debug, Clone)]
pub struct Stripped {
    /// The JavaScript: the program's body, ready to be wrapped in an async function.
    pub code: String,
    /// Generated line (0-based) → the source line and column (1-based) it starts on.
    lines: Vec<Option<(u32, u32)>>,
    /// The source after fences were removed, for showing the failing line.
    pub source: String,
    /// Lines removed before the source (an opening fence), added back to positions.
    offset: u32,
}

/// A syntax error in the model's program.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// 1-based line in the model's source.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// Removes a Markdown code fence around the program, returning the program and how many
/// lines were removed before it.
fn unfence(text: &str) -> (&str, u32) {
    let trimmed = text.trim();
    if !trimmed.starts_with("```") {
        return (text, 0);
    }
    let Some(first_newline) = trimmed.find('\n') else {
        return (text, 0);
    };
    let body = &trimmed[first_newline + 1..];
    let body = body.trim_end().strip_suffix("```").unwrap_or(body);
    let leading = text.len() - text.trim_start().len();
    let removed = text[..leading].matches('\n').count() as u32 + 1;
    (body, removed)
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, column)
}

/// Strips types from a program whose body may use top-level `await` and `return`.
pub fn strip(program: &str) -> Result<Stripped, SyntaxError> {
    let (source, offset) = unfence(program);
    let allocator = Allocator::default();
    let source_type = SourceType::ts().with_module(true);
    let options = ParseOptions {
        allow_return_outside_function: true,
        ..ParseOptions::default()
    };
    let parsed = Parser::new(&allocator, source, source_type)
        .with_options(options)
        .parse();
    if let Some(e) = parsed.diagnostics.errors().next() {
        let at = e.labels.as_ref().first().map_or(0, |l| l.offset());
        let (line, column) = line_col(source, at as usize);
        return Err(SyntaxError {
            message: e.message.to_string(),
            line: line + offset,
            column,
        });
    }
    let mut ast = parsed.program;
    let scoping = SemanticBuilder::new()
        .with_enum_eval(true)
        .build(&ast)
        .semantic
        .into_scoping();
    let transform = Transformer::new(
        &allocator,
        Path::new("program.ts"),
        &TransformOptions::default(),
    )
    .build_with_scoping(scoping, &mut ast);
    if let Some(e) = transform.diagnostics.errors().next() {
        return Err(SyntaxError {
            message: e.message.to_string(),
            line: 1 + offset,
            column: 1,
        });
    }
    let generated = Codegen::new()
        .with_options(CodegenOptions {
            source_map_path: Some(PathBuf::from("program.ts")),
            ..CodegenOptions::default()
        })
        .build(&ast);
    let line_count = generated.code.lines().count();
    let mut lines = vec![None; line_count + 1];
    if let Some(map) = &generated.map {
        let table = map.generate_lookup_table();
        for (i, slot) in lines.iter_mut().enumerate() {
            let text = generated.code.lines().nth(i).unwrap_or("");
            let col = (text.len() - text.trim_start().len()) as u32;
            *slot = map
                .lookup_token(&table, i as u32, col)
                .filter(|t| t.get_dst_line() == i as u32)
                .map(|t| (t.get_src_line() + 1, t.get_src_col() + 1));
        }
    }
    Ok(Stripped {
        code: generated.code,
        lines,
        source: source.to_string(),
        offset,
    })
}

impl Stripped {
    /// The model's line and column for a 1-based line of the generated code.
    pub fn original(&self, generated_line: u32) -> Option<(u32, u32)> {
        let i = generated_line.checked_sub(1)? as usize;
        // A line with no mapping of its own takes the nearest mapped line before it.
        self.lines[..=i.min(self.lines.len().saturating_sub(1))]
            .iter()
            .rev()
            .flatten()
            .next()
            .map(|(l, c)| (l + self.offset, *c))
    }

    /// The text of a 1-based line of the model's program (fence lines counted).
    pub fn source_line(&self, line: u32) -> Option<&str> {
        let i = line.checked_sub(1 + self.offset)? as usize;
        self.source.lines().nth(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_go_and_javascript_stays() {
        let s = strip(
            "interface P { name: string }\nenum Color { Red, Green }\nfunction first<T>(xs: T[]): T { return xs[0] }\nconst p = { name: 'a' } satisfies P;\nconst n: number = await Promise.resolve(1);\nreturn first([p.name, Color.Green, n]);",
        )
        .unwrap();
        assert!(
            !s.code.contains("interface")
                && !s.code.contains(": number")
                && !s.code.contains("satisfies")
        );
        assert!(
            s.code.contains("await Promise.resolve(1)") && s.code.contains("return first("),
            "{}",
            s.code
        );
    }

    #[test]
    fn fences_are_removed_and_lines_still_map() {
        let s = strip("```ts\nconst a: number = 1;\n\nthrow new Error('x');\n```").unwrap();
        let throw_line = s.code.lines().position(|l| l.contains("throw")).unwrap() as u32 + 1;
        assert_eq!(s.original(throw_line).map(|p| p.0), Some(4));
        assert_eq!(s.source_line(4), Some("throw new Error('x');"));
    }

    #[test]
    fn syntax_errors_point_at_the_source() {
        let e = strip("const a = 1;\nconst b = ;\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
    }
}
