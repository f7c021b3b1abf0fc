//! The shape of `src/`, checked: which module uses which, and how long files grow.
//!
//! Every `use` and every path written in a module of the library (its tests left out) is an
//! edge from that module to the module that defines the item, re-exports followed to where the
//! item really lives. The edges must form no cycle (no two modules use each other, directly or
//! through a third), the layers below the HTTP layer must not reach up into it, and no file may
//! grow past 500 lines before its tests, so the next feature splits a file by resource instead of
//! growing it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Lines a file of `src/` may have before its `#[cfg(test)]` module.
const MAX_LINES_BEFORE_TESTS: usize = 500;

/// What each top-level module must not use: the layers below the HTTP layer never reach up into
/// it, the command-line client talks to the service over HTTP only, and nothing but the
/// binary's entry points knows the command line or how the application is put together.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "domain",
        &[
            "storage", "cluster", "http", "client", "webhooks", "config", "startup", "cli",
        ],
    ),
    (
        "storage",
        &[
            "cluster", "http", "client", "webhooks", "config", "startup", "cli",
        ],
    ),
    ("cluster", &["http", "client", "config", "startup", "cli"]),
    ("webhooks", &["http", "client", "config", "startup", "cli"]),
    ("http", &["client", "config", "startup", "cli"]),
    (
        "client",
        &[
            "storage", "cluster", "http", "webhooks", "config", "startup",
        ],
    ),
];

#[test]
fn no_two_modules_use_each_other_directly_or_through_others() {
    let graph = Graph::of_library();

    let cycles: Vec<_> = graph.cycles().into_iter().collect();

    assert!(
        cycles.is_empty(),
        "modules that use each other (each line: a module and what it uses of the cycle):\n{}",
        cycles
            .iter()
            .map(|cycle| graph.describe(cycle))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[test]
fn no_two_parts_of_a_folder_use_each_other() {
    let graph = Graph::of_library();

    let mut cycles = Vec::new();
    for folder in graph.folders() {
        let collapsed = graph.collapsed_into(&folder);
        cycles.extend(
            collapsed
                .cycles()
                .into_iter()
                .map(|cycle| collapsed.describe(&cycle)),
        );
    }

    assert!(
        cycles.is_empty(),
        "parts of one folder (a file, or a folder counted whole) that use each other:\n{}",
        cycles.join("\n\n")
    );
}

#[test]
fn the_layers_below_http_never_reach_up_into_it() {
    let graph = Graph::of_library();

    let mut wrong = Vec::new();
    for (from, targets) in &graph.edges {
        let layer = top_level(from);
        let Some((_, forbidden)) = FORBIDDEN.iter().find(|(name, _)| *name == layer) else {
            continue;
        };
        for to in targets {
            if forbidden.contains(&top_level(to)) {
                wrong.push(format!("{from} uses {to}"));
            }
        }
    }

    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_file_grows_past_500_lines_before_its_tests() {
    let mut long = Vec::new();
    for file in source_files() {
        let text = std::fs::read_to_string(&file.path).expect("readable");
        let lines = lines_before_tests(&text);
        if lines > MAX_LINES_BEFORE_TESTS {
            long.push(format!("{} has {lines} lines", file.path.display()));
        }
    }

    assert!(
        long.is_empty(),
        "split these by what they hold:\n{}",
        long.join("\n")
    );
}

/// Lines before the file's test module: the `#[cfg(test)]` that opens a `mod`, not one on a
/// helper that only the tests call.
fn lines_before_tests(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .position(|pair| pair[0].trim() == "#[cfg(test)]" && pair[1].starts_with("mod "))
        .unwrap_or(lines.len())
}

/// A file of the library and the module it is.
struct SourceFile {
    path: PathBuf,
    module: String,
}

fn source_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("readable folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let relative = path.strip_prefix(&root).expect("under src");
                let mut parts: Vec<String> = relative
                    .with_extension("")
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy().into_owned())
                    .collect();
                // The binary is a crate of its own that uses the library from outside.
                if parts == ["main"] {
                    continue;
                }
                if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                    parts.pop();
                }
                let module = std::iter::once("crate".to_owned())
                    .chain(parts)
                    .collect::<Vec<_>>()
                    .join("::");
                files.push(SourceFile { path, module });
            }
        }
    }
    files.sort_by(|a, b| a.module.cmp(&b.module));
    files
}

/// `crate::http::events` → `http`.
fn top_level(module: &str) -> &str {
    module.split("::").nth(1).unwrap_or("crate")
}

/// Modules and what each uses.
struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn of_library() -> Self {
        let files = source_files();
        let modules: BTreeSet<String> = files.iter().map(|file| file.module.clone()).collect();
        MODULES.with(|known| *known.borrow_mut() = modules.clone());
        let mut parsed = BTreeMap::new();
        let mut reexports = BTreeMap::new();
        for file in &files {
            let text = std::fs::read_to_string(&file.path).expect("readable");
            let syntax = syn::parse_file(&text)
                .unwrap_or_else(|error| panic!("{}: {error}", file.path.display()));
            let items: Vec<syn::Item> = syntax.items.into_iter().filter(not_test).collect();
            for item in &items {
                if let syn::Item::Use(import) = item
                    && !matches!(import.vis, syn::Visibility::Inherited)
                {
                    for (name, path) in flatten(&file.module, &import.tree) {
                        if name != "*" {
                            reexports.insert((file.module.clone(), name), path);
                        }
                    }
                }
            }
            parsed.insert(file.module.clone(), items);
        }
        let resolver = Resolver {
            modules: &modules,
            reexports: &reexports,
        };
        let mut edges = BTreeMap::new();
        for (module, items) in &parsed {
            let mut collector = Collector {
                module,
                aliases: BTreeMap::new(),
                children: BTreeSet::new(),
                paths: Vec::new(),
            };
            for item in items {
                match item {
                    syn::Item::Mod(child) if child.content.is_none() => {
                        collector.children.insert(child.ident.to_string());
                    }
                    syn::Item::Use(import) => {
                        for (name, path) in flatten(module, &import.tree) {
                            collector.paths.push(path.clone());
                            if name != "*" {
                                collector.aliases.insert(name, path);
                            }
                        }
                    }
                    _ => {}
                }
            }
            for item in items {
                if !matches!(item, syn::Item::Use(_)) {
                    collector.visit_item(item);
                }
            }
            let targets: BTreeSet<String> = collector
                .paths
                .iter()
                .filter_map(|path| resolver.module_of(path))
                .filter(|target| target != module && target != "crate")
                .collect();
            edges.insert(module.clone(), targets);
        }
        Graph { edges }
    }

    /// Every module that is a folder (`crate`, `crate::http`, ...).
    fn folders(&self) -> Vec<String> {
        let modules: BTreeSet<&String> = self.edges.keys().collect();
        modules
            .iter()
            .filter(|module| {
                let prefix = format!("{module}::");
                modules.iter().any(|other| other.starts_with(&prefix))
            })
            .map(|module| (*module).clone())
            .collect()
    }

    /// The graph among the parts of `folder`: its own file and each child, a child folder
    /// standing for everything in it. Uses from or to modules outside the folder are dropped.
    fn collapsed_into(&self, folder: &str) -> Graph {
        let prefix = format!("{folder}::");
        let part = |module: &str| -> Option<String> {
            if module == folder {
                return Some(module.to_owned());
            }
            let rest = module.strip_prefix(&prefix)?;
            let child = rest.split("::").next()?;
            Some(format!("{prefix}{child}"))
        };
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, targets) in &self.edges {
            let Some(from_part) = part(from) else {
                continue;
            };
            let entry = edges.entry(from_part.clone()).or_default();
            for to in targets {
                if let Some(to_part) = part(to)
                    && to_part != from_part
                    && (from_part != folder || to_part != folder)
                {
                    // A folder's own file and its children: counted like any other parts,
                    // except that the children of a folder counted whole belong to it.
                    entry.insert(to_part);
                }
            }
        }
        Graph { edges }
    }

    /// Strongly connected components of more than one module (Tarjan's algorithm).
    fn cycles(&self) -> Vec<Vec<String>> {
        struct State<'a> {
            graph: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            found: Vec<Vec<String>>,
        }
        fn visit<'a>(state: &mut State<'a>, node: &'a str) {
            let next = state.index.len();
            state.index.insert(node, next);
            state.low.insert(node, next);
            state.stack.push(node);
            state.on_stack.insert(node);
            let graph = state.graph;
            for target in graph.edges.get(node).into_iter().flatten() {
                let target = target.as_str();
                if !state.index.contains_key(target) {
                    visit(state, target);
                    let low = state.low[node].min(state.low[target]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(target) {
                    let low = state.low[node].min(state.index[target]);
                    state.low.insert(node, low);
                }
            }
            if state.low[node] == state.index[node] {
                let mut component = Vec::new();
                while let Some(member) = state.stack.pop() {
                    state.on_stack.remove(member);
                    component.push(member.to_owned());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    state.found.push(component);
                }
            }
        }
        let mut state = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            found: Vec::new(),
        };
        for node in self.edges.keys() {
            if !state.index.contains_key(node.as_str()) {
                visit(&mut state, node);
            }
        }
        state.found
    }

    fn describe(&self, cycle: &[String]) -> String {
        cycle
            .iter()
            .map(|module| {
                let uses: Vec<&str> = self.edges[module]
                    .iter()
                    .filter(|target| cycle.contains(target))
                    .map(String::as_str)
                    .collect();
                format!("  {module} -> {}", uses.join(", "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn not_test(item: &syn::Item) -> bool {
    let attributes = match item {
        syn::Item::Mod(item) => &item.attrs,
        syn::Item::Fn(item) => &item.attrs,
        syn::Item::Use(item) => &item.attrs,
        syn::Item::Impl(item) => &item.attrs,
        syn::Item::Struct(item) => &item.attrs,
        _ => return true,
    };
    !attributes.iter().any(|attribute| {
        attribute.path().is_ident("cfg")
            && attribute
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

/// The names a `use` brings in, each with the absolute path it stands for.
fn flatten(module: &str, tree: &syn::UseTree) -> Vec<(String, Vec<String>)> {
    fn walk(
        module: &str,
        tree: &syn::UseTree,
        prefix: &mut Vec<String>,
        out: &mut Vec<(String, Vec<String>)>,
    ) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                walk(module, &path.tree, prefix, out);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                let ident = name.ident.to_string();
                let mut full = prefix.clone();
                if ident != "self" {
                    full.push(ident.clone());
                }
                let last = full.last().cloned().unwrap_or_default();
                out.push((last, absolute(module, &full)));
            }
            syn::UseTree::Rename(rename) => {
                let mut full = prefix.clone();
                full.push(rename.ident.to_string());
                out.push((rename.rename.to_string(), absolute(module, &full)));
            }
            syn::UseTree::Glob(_) => out.push(("*".to_owned(), absolute(module, prefix))),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    walk(module, tree, prefix, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(module, tree, &mut Vec::new(), &mut out);
    out
}

/// A path as written in `module`, made absolute (`crate::...`) where it starts with `crate`,
/// `super` or `self`; other paths (an external crate, a child module) are returned as written.
fn absolute(module: &str, path: &[String]) -> Vec<String> {
    let mut base: Vec<String> = module.split("::").map(str::to_owned).collect();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => return path.to_vec(),
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => {
            // `use child::Item` in a module names its child module.
            let child = format!("{module}::{}", rest.first().map_or("", String::as_str));
            if !MODULES.with(|modules| modules.borrow().contains(&child)) {
                return path.to_vec();
            }
        }
    }
    base.extend(rest.iter().cloned());
    base
}

thread_local! {
    /// Every module of the library, for telling a child module's path from an external crate's.
    static MODULES: std::cell::RefCell<BTreeSet<String>> = const { std::cell::RefCell::new(BTreeSet::new()) };
}

/// Finds the module an absolute path points into, following re-exports.
struct Resolver<'a> {
    modules: &'a BTreeSet<String>,
    reexports: &'a BTreeMap<(String, String), Vec<String>>,
}

impl Resolver<'_> {
    fn module_of(&self, path: &[String]) -> Option<String> {
        let mut path = path.to_vec();
        for _ in 0..16 {
            if path.first().map(String::as_str) != Some("crate") {
                return None;
            }
            let (module, next) = (1..=path.len()).rev().find_map(|length| {
                let candidate = path[..length].join("::");
                self.modules
                    .contains(&candidate)
                    .then(|| (candidate, path.get(length).cloned()))
            })?;
            match next.and_then(|name| self.reexports.get(&(module.clone(), name))) {
                Some(target) => {
                    let consumed = module.split("::").count() + 1;
                    let mut followed = target.clone();
                    followed.extend(path[consumed..].iter().cloned());
                    if followed == path {
                        return Some(module);
                    }
                    path = followed;
                }
                None => return Some(module),
            }
        }
        None
    }
}

/// Collects the paths a module's items use (`crate::…`, `super::…`, `self::…`, a child module's,
/// or one through a name a `use` brought in).
struct Collector<'a> {
    module: &'a str,
    aliases: BTreeMap<String, Vec<String>>,
    children: BTreeSet<String>,
    paths: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_use(&mut self, import: &'ast syn::ItemUse) {
        // A `use` inside a function body.
        let paths = flatten(self.module, &import.tree);
        self.paths.extend(paths.into_iter().map(|(_, path)| path));
    }

    fn visit_vis_restricted(&mut self, _: &'ast syn::VisRestricted) {
        // `pub(super)`, `pub(in path)`: who may see an item, not something the item uses.
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if not_test(&syn::Item::Mod(item.clone())) {
            syn::visit::visit_item_mod(self, item);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect();
        if let Some(first) = segments.first() {
            let absolute = match first.as_str() {
                "crate" | "super" | "self" => Some(absolute(self.module, &segments)),
                name if self.children.contains(name) => {
                    let mut full: Vec<String> =
                        self.module.split("::").map(str::to_owned).collect();
                    full.extend(segments.iter().cloned());
                    Some(full)
                }
                name => self.aliases.get(name).map(|target| {
                    let mut full = target.clone();
                    full.extend(segments[1..].iter().cloned());
                    full
                }),
            };
            if let Some(absolute) = absolute {
                self.paths.push(absolute);
            }
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // Paths inside macro calls (`routes!(submit::create)`, `format!`) are tokens, not
        // syntax: read every `a::b::c` run among them as a path.
        let mut run: Vec<String> = Vec::new();
        let mut tokens = mac.tokens.clone().into_iter().peekable();
        let mut pending_colon = false;
        let flush = |run: &mut Vec<String>, collector: &mut Self| {
            if run.len() > 1 {
                let path = syn::Path {
                    leading_colon: None,
                    segments: run
                        .iter()
                        .map(|segment| {
                            syn::PathSegment::from(syn::Ident::new(
                                segment,
                                proc_macro2::Span::call_site(),
                            ))
                        })
                        .collect(),
                };
                collector.visit_path(&path);
            }
            run.clear();
        };
        let mut stack: Vec<proc_macro2::TokenStream> = Vec::new();
        loop {
            let Some(token) = tokens.next() else {
                flush(&mut run, self);
                match stack.pop() {
                    Some(outer) => {
                        tokens = outer.into_iter().peekable();
                        continue;
                    }
                    None => break,
                }
            };
            match token {
                proc_macro2::TokenTree::Ident(ident) => {
                    if !pending_colon {
                        flush(&mut run, self);
                    }
                    run.push(ident.to_string());
                    pending_colon = false;
                }
                proc_macro2::TokenTree::Punct(punct) if punct.as_char() == ':' => {
                    if punct.spacing() == proc_macro2::Spacing::Joint {
                        pending_colon = true;
                    }
                }
                proc_macro2::TokenTree::Group(group) => {
                    flush(&mut run, self);
                    pending_colon = false;
                    let rest: proc_macro2::TokenStream = tokens.collect();
                    stack.push(rest);
                    tokens = group.stream().into_iter().peekable();
                }
                _ => {
                    flush(&mut run, self);
                    pending_colon = false;
                }
            }
        }
    }
}
