//! The name of the payload's container (`kubectl logs POD -c TOOL`): given, or the program the
//! command runs.

use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::kube_rules;
use crate::domain::submission::spec::default_tool;

/// Words that start a command without naming its program (shell syntax and builtins).
const NOT_A_TOOL: [&str; 14] = [
    "source", ".", "cd", "export", "set", "exec", "env", "time", "if", "for", "while", "bash",
    "sh", "eval",
];

/// `tool`, a valid container name, or else the one `command` suggests.
pub(crate) fn parse(
    tool: Option<String>,
    command: Option<&str>,
) -> Result<String, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let tool = match tool {
        Some(tool) => {
            errors.check("tool", kube_rules::dns1123_label(&tool));
            tool
        }
        None => command.map(tool_of).unwrap_or_else(default_tool),
    };
    errors.or(tool)
}

/// The container name a command suggests: its program's file name without directory or
/// extension (`./bin/analyze.py cfg` → `analyze`), when that is a valid container name.
pub fn tool_of(command: &str) -> String {
    let Some(first) = command.split_whitespace().next() else {
        return default_tool();
    };
    let file = first.rsplit('/').next().unwrap_or(first);
    let stem = match file.split_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    };
    let name = stem.to_ascii_lowercase().replace('_', "-");
    if NOT_A_TOOL.contains(&file) || kube_rules::dns1123_label(&name).is_err() {
        default_tool()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_is_named_after_the_program_the_command_runs() {
        for (command, tool) in [
            ("analyze.py config/master/analyze.cfg", "analyze"),
            ("./bin/make_plots --all", "make-plots"),
            ("source setup.sh && analyze", "payload"),
            ("for f in *; do echo $f; done", "payload"),
            ("ÄÖ", "payload"),
            ("echo hello", "echo"),
        ] {
            assert_eq!(tool_of(command), tool, "{command}");
        }
    }
}
