//! Printing a Modelfile back as text, as Ollama's `Modelfile.String()` does: parsing the result
//! gives the same commands.

use super::Modelfile;
use std::fmt;

/// Ollama's `quote`, for printing a Modelfile back.
fn quote(s: &str) -> String {
    if s.contains('\n') || s.starts_with(' ') || s.ends_with(' ') {
        if s.contains('"') {
            return format!("\"\"\"{s}\"\"\"");
        }
        return format!("\"{s}\"");
    }
    s.to_owned()
}

/// Prints the Modelfile back as Ollama's `Modelfile.String()` does; parsing the result gives the
/// same commands.
impl fmt::Display for Modelfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.commands {
            match c.name.as_str() {
                "model" => writeln!(f, "FROM {}", c.args)?,
                "license" | "template" | "system" | "adapter" | "renderer" | "parser"
                | "requires" | "draft" => {
                    writeln!(f, "{} {}", c.name.to_uppercase(), quote(&c.args))?
                }
                "message" => {
                    let (role, content) = c.args.split_once(": ").unwrap_or((&c.args, ""));
                    writeln!(f, "MESSAGE {role} {}", quote(content))?
                }
                _ => writeln!(f, "PARAMETER {} {}", c.name, quote(&c.args))?,
            }
        }
        Ok(())
    }
}
