//! JSON Lines files for `submit --file`: cut into chunks the same way every time, each with an
//! `Idempotency-Key` of its lines and position, parsed and filled from the flags, and a refused
//! chunk's field errors told by the file's line numbers.

use std::io::BufRead;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::Problem;

/// A chunk is cut before it grows past this, well under the server's 64 MiB a request.
pub const MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Fills what `line` lacks from `defaults`, key by key inside objects (`env`, `labels`,
/// `resources`): a line's own values, `null` included, always win.
pub fn fill(line: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (key, default) in defaults {
        match (line.get_mut(key), default) {
            (None, _) => {
                line.insert(key.clone(), default.clone());
            }
            (Some(Value::Object(own)), Value::Object(default)) => fill(own, default),
            (Some(_), _) => {}
        }
    }
}

/// A line of the file that holds something (blank lines are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based, as editors count.
    pub number: usize,
    pub text: String,
}

/// Consecutive lines sent in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based position in the file.
    pub index: usize,
    pub lines: Vec<Line>,
}

impl Chunk {
    pub fn span(&self) -> String {
        match (self.lines.first(), self.lines.last()) {
            (Some(first), Some(last)) if first.number != last.number => {
                format!("lines {}-{}", first.number, last.number)
            }
            (Some(first), _) => format!("line {}", first.number),
            _ => "no lines".into(),
        }
    }
}

/// The most submissions one batch request may carry (the server's limit).
pub const MAX_LINES_PER_REQUEST: usize = 10_000;

/// Cuts lines into chunks of `size` lines, or fewer when they would pass [`MAX_CHUNK_BYTES`].
/// The cut depends on the lines alone, so the same input always gives the same chunks.
pub struct Chunker<R> {
    reader: R,
    size: usize,
    number: usize,
    index: usize,
    held: Option<Line>,
    done: bool,
}

impl<R: BufRead> Chunker<R> {
    pub fn new(reader: R, size: usize) -> Self {
        Chunker {
            reader,
            size: size.max(1),
            number: 0,
            index: 0,
            held: None,
            done: false,
        }
    }

    fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        if let Some(line) = self.held.take() {
            return Ok(Some(line));
        }
        let mut text = String::new();
        loop {
            text.clear();
            if self.reader.read_line(&mut text)? == 0 {
                return Ok(None);
            }
            self.number += 1;
            let trimmed = text.trim_end_matches(['\n', '\r']);
            if !trimmed.trim().is_empty() {
                return Ok(Some(Line {
                    number: self.number,
                    text: trimmed.to_owned(),
                }));
            }
        }
    }
}

impl<R: BufRead> Iterator for Chunker<R> {
    type Item = std::io::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut lines = Vec::new();
        let mut bytes = 0;
        while lines.len() < self.size {
            match self.next_line() {
                Ok(Some(line)) => {
                    if !lines.is_empty() && bytes + line.text.len() > MAX_CHUNK_BYTES {
                        self.held = Some(line);
                        break;
                    }
                    bytes += line.text.len() + 1;
                    lines.push(line);
                }
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
        if lines.is_empty() {
            return None;
        }
        let chunk = Chunk {
            index: self.index,
            lines,
        };
        self.index += 1;
        Some(Ok(chunk))
    }
}

/// The chunk's `Idempotency-Key`: SHA-256 of its position and its lines as they are in the file
/// (and the `--batch-key`, if given), each length-prefixed so no two inputs hash alike.
pub fn chunk_key(batch_key: Option<&str>, chunk: &Chunk) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(b"submission-helper submit --file, v1");
    field(batch_key.unwrap_or_default().as_bytes());
    field(&(chunk.index as u64).to_be_bytes());
    for line in &chunk.lines {
        field(line.text.as_bytes());
    }
    let digest: String = hash
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sh-batch-{digest}")
}

/// The submissions of a chunk: each line a JSON object, filled from the flags. Every bad line
/// is named (the first few), with its line number.
pub fn parse_chunk(
    source: &str,
    chunk: &Chunk,
    defaults: &Map<String, Value>,
) -> Result<Vec<Value>, Vec<String>> {
    let mut submissions = Vec::with_capacity(chunk.lines.len());
    let mut bad = Vec::new();
    for line in &chunk.lines {
        match serde_json::from_str::<Value>(&line.text) {
            Ok(Value::Object(mut fields)) => {
                fill(&mut fields, defaults);
                submissions.push(Value::Object(fields));
            }
            Ok(_) => bad.push(format!("{source}:{}: not a JSON object", line.number)),
            Err(error) => bad.push(format!("{source}:{}: not JSON: {error}", line.number)),
        }
    }
    if bad.is_empty() {
        Ok(submissions)
    } else {
        Err(bad)
    }
}

/// A batch refused with field errors, told in the file's terms: `submissions[3].image` of the
/// chunk becomes `tasks.jsonl:1504: image`.
pub fn in_file_terms(mut problem: Problem, source: &str, chunk: &Chunk) -> Problem {
    for error in &mut problem.errors {
        let Some(rest) = error.field.strip_prefix("submissions[") else {
            continue;
        };
        let Some((index, field)) = rest.split_once(']') else {
            continue;
        };
        if let Some(line) = index
            .parse::<usize>()
            .ok()
            .and_then(|index| chunk.lines.get(index))
        {
            let field = field.trim_start_matches('.');
            error.field = format!("{source}:{}: {field}", line.number);
        }
    }
    problem.detail = format!(
        "{source} {} were refused, none of them was stored: {}",
        chunk.span(),
        problem.detail
    );
    problem
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chunks(text: &str, size: usize) -> Vec<Chunk> {
        Chunker::new(text.as_bytes(), size)
            .collect::<Result<_, _>>()
            .expect("chunks")
    }

    #[test]
    fn flags_fill_only_what_a_line_lacks_key_by_key() {
        let mut line = serde_json::from_value::<Map<String, Value>>(json!({
            "command": "run 1",
            "labels": {"campaign": "own"},
            "volume_claim": null,
            "resources": {"requests": {"cpu": "2"}}
        }))
        .expect("object");
        let defaults = serde_json::from_value::<Map<String, Value>>(json!({
            "image": "img",
            "command": "default",
            "labels": {"campaign": "flag", "batch": "b1"},
            "volume_claim": "claim",
            "resources": {"requests": {"cpu": "1", "memory": "4000M"}}
        }))
        .expect("object");

        fill(&mut line, &defaults);

        assert_eq!(
            Value::Object(line),
            json!({
                "command": "run 1",
                "image": "img",
                "labels": {"campaign": "own", "batch": "b1"},
                "volume_claim": null,
                "resources": {"requests": {"cpu": "2", "memory": "4000M"}}
            })
        );
    }

    #[test]
    fn lines_are_cut_into_chunks_that_skip_blank_lines_and_keep_line_numbers() {
        let chunks = chunks("{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}\n   \n{\"a\":4}", 2);

        let numbers: Vec<Vec<usize>> = chunks
            .iter()
            .map(|chunk| chunk.lines.iter().map(|line| line.number).collect())
            .collect();
        assert_eq!(numbers, vec![vec![1, 3], vec![4, 6]]);
        assert_eq!(chunks[0].lines[1].text, "{\"a\":2}");
        assert_eq!(
            chunks.iter().map(|c| c.index).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert!(self::chunks("\n\n", 2).is_empty());
    }

    #[test]
    fn a_chunk_is_cut_before_it_grows_too_large() {
        let long = format!("\"{}\"", "x".repeat(MAX_CHUNK_BYTES / 2));
        let text = format!("{long}\n{long}\n{long}\n");

        let sizes: Vec<usize> = chunks(&text, 100)
            .iter()
            .map(|chunk| chunk.lines.len())
            .collect();

        assert_eq!(sizes, vec![1, 1, 1]);
    }

    #[test]
    fn a_chunks_key_depends_on_its_lines_its_position_and_the_batch_key_only() {
        let text = "{\"command\":\"a\"}\n{\"command\":\"b\"}\n";
        let first = chunks(text, 1);
        let again = chunks(&format!("\n{text}"), 1);
        let other = chunks("{\"command\":\"a\"}\n{\"command\":\"c\"}\n", 1);

        let key = |chunk: &Chunk| chunk_key(None, chunk);
        assert_eq!(key(&first[0]), key(&again[0]), "blank lines do not count");
        assert_eq!(key(&first[1]), key(&again[1]));
        assert_eq!(key(&first[0]), key(&other[0]));
        assert_ne!(key(&first[1]), key(&other[1]), "another line, another key");
        let moved = Chunk {
            index: 1,
            ..first[0].clone()
        };
        assert_ne!(key(&first[0]), key(&moved), "another position, another key");
        assert_ne!(key(&first[0]), chunk_key(Some("run 2"), &first[0]));
        let key = key(&first[0]);
        assert!(
            key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()),
            "{key}"
        );
    }

    #[test]
    fn bad_lines_are_named_by_their_line_numbers() {
        let chunk = &chunks("{\"command\":\"a\"}\n[1]\n\nnot json\n", 10)[0];

        let bad = parse_chunk("tasks.jsonl", chunk, &Map::new()).expect_err("bad lines");

        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0], "tasks.jsonl:2: not a JSON object");
        assert!(
            bad[1].starts_with("tasks.jsonl:4: not JSON: "),
            "{}",
            bad[1]
        );
    }

    #[test]
    fn a_refused_batch_names_the_lines_of_the_file() {
        let chunk = Chunk {
            index: 3,
            lines: vec![
                Line {
                    number: 1501,
                    text: "{}".into(),
                },
                Line {
                    number: 1503,
                    text: "{}".into(),
                },
            ],
        };
        let problem = Problem {
            title: "Invalid request".into(),
            status: 422,
            detail: "1 field(s) are invalid".into(),
            errors: vec![super::super::error::FieldReason {
                field: "submissions[1].mount_path".into(),
                reason: "must be an absolute path".into(),
            }],
        };

        let told = in_file_terms(problem, "tasks.jsonl", &chunk).to_string();

        assert_eq!(
            told,
            "tasks.jsonl lines 1501-1503 were refused, none of them was stored: 1 field(s) are invalid\n  tasks.jsonl:1503: mount_path: must be an absolute path"
        );
    }
}
