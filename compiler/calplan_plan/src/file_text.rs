//! A node's or router's file as a state of the plan holds it: its digest always, its text only
//! when someone needs it.
//!
//! Every state the planner passes through is a compile of the whole cluster, and at 20,000
//! nodes each node's `routes` lists every block of the cluster: a state's files held as text
//! are tens of gigabytes. A [`FileText`] of a compiled state keeps the digest and, in place of
//! the text, where it came from (the [`Origin`] that renders that state again, and the path
//! there); the text of a file that changes is kept when the state is compiled, or rendered
//! again for all the files a stage changes at once ([`materialise`]). Files read from a
//! directory are held as read.
//!
//! Pure: an origin renders from what it was given; nothing here reads files.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// Renders a state's files again: the texts of the paths the filter accepts.
pub type Render = dyn Fn(&(dyn Fn(&str) -> bool + Sync)) -> Result<BTreeMap<String, String>, String> + Send + Sync;

/// A compiled state whose files can be rendered again.
pub struct Origin {
    render: Box<Render>,
    /// Every file of the state, once a text was asked for outside [`materialise`] (the route
    /// pins' barriers list every node's routes, so they need every text anyway).
    everything: OnceLock<BTreeMap<String, Arc<str>>>,
}

impl Origin {
    pub fn new(render: Box<Render>) -> Arc<Origin> {
        Arc::new(Origin { render, everything: OnceLock::new() })
    }

    fn render(&self, wanted: &(dyn Fn(&str) -> bool + Sync)) -> BTreeMap<String, String> {
        // The state compiled once already; the same inputs compile again.
        (self.render)(wanted).unwrap_or_else(|error| panic!("a state that compiled before no longer compiles: {error}"))
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("Origin")
    }
}

/// The content of one planned file: equal when the contents are.
#[derive(Clone)]
pub struct FileText(Arc<Inner>);

struct Inner {
    /// The SHA-256 of the text, hex; computed on demand for a text read as it is.
    digest: OnceLock<String>,
    text: OnceLock<Arc<str>>,
    /// Where the text can be rendered again: a state, and the file's path in it (a route pin
    /// is the node's `routes`).
    origin: Option<(Arc<Origin>, String)>,
}

impl FileText {
    /// A file whose text is at hand (read from a directory, or kept when it changed).
    pub fn held(text: impl Into<Arc<str>>) -> FileText {
        let inner = Inner { digest: OnceLock::new(), text: OnceLock::from(text.into()), origin: None };
        FileText(Arc::new(inner))
    }

    /// A file read as it is, whose digest is known already.
    pub fn held_with_digest(text: impl Into<Arc<str>>, digest: String) -> FileText {
        let inner = Inner { digest: OnceLock::from(digest), text: OnceLock::from(text.into()), origin: None };
        FileText(Arc::new(inner))
    }

    /// A file of a compiled state: its digest, its text if it was kept, and where to render it
    /// again.
    pub fn rendered(digest: String, text: Option<String>, origin: &Arc<Origin>, path: &str) -> FileText {
        let text = text.map_or_else(OnceLock::new, |text| OnceLock::from(Arc::<str>::from(text)));
        FileText(Arc::new(Inner { digest: OnceLock::from(digest), text, origin: Some((origin.clone(), path.to_string())) }))
    }

    /// The hex SHA-256 of the text.
    pub fn digest(&self) -> &str {
        self.0.digest.get_or_init(|| digest_of(self.text()))
    }

    /// Whether the text is in memory.
    pub fn is_held(&self) -> bool {
        self.0.text.get().is_some()
    }

    /// Whether a freshly rendered file has this content; by text when this one's is at hand.
    pub fn matches(&self, digest: &str, text: &str) -> bool {
        match self.0.text.get() {
            Some(held) => **held == *text,
            None => self.digest() == digest,
        }
    }

    /// The text, rendered again if it was not kept: prefer [`materialise`] for many files.
    pub fn text(&self) -> &str {
        self.0.text.get_or_init(|| {
            let (origin, path) = self.0.origin.as_ref().expect("a file without its text has an origin");
            let everything = origin
                .everything
                .get_or_init(|| origin.render(&|_| true).into_iter().map(|(path, text)| (path, Arc::<str>::from(text))).collect());
            everything.get(path).cloned().expect("a state's file is in its render")
        })
    }
}

impl std::ops::Deref for FileText {
    type Target = str;

    fn deref(&self) -> &str {
        self.text()
    }
}

impl PartialEq for FileText {
    fn eq(&self, other: &FileText) -> bool {
        if Arc::ptr_eq(&self.0, &other.0) {
            return true;
        }
        match (self.0.text.get(), other.0.text.get()) {
            (Some(a), Some(b)) => a == b,
            _ => self.digest() == other.digest(),
        }
    }
}

impl Eq for FileText {}

impl fmt::Debug for FileText {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        match self.0.text.get() {
            Some(text) => write!(formatter, "{text:?}"),
            None => write!(formatter, "FileText(sha256:{})", self.digest()),
        }
    }
}

/// The hex SHA-256 of a text, as artifacts' digests are written.
pub fn digest_of(text: &str) -> String {
    crate::current::text_digest(text)
}

/// Makes the texts of `files` available, rendering each origin again at most once, for the
/// files it did not keep.
pub fn materialise<'a>(files: impl IntoIterator<Item = &'a FileText>) {
    let mut wanted: Vec<(Arc<Origin>, Vec<&'a FileText>)> = Vec::new();
    for file in files {
        if file.is_held() {
            continue;
        }
        let (origin, _) = file.0.origin.as_ref().expect("a file without its text has an origin");
        if let Some(everything) = origin.everything.get() {
            let _ = file.0.text.set(everything[&file.0.origin.as_ref().expect("origin").1].clone());
            continue;
        }
        match wanted.iter_mut().find(|(known, _)| Arc::ptr_eq(known, origin)) {
            Some((_, files)) => files.push(file),
            None => wanted.push((origin.clone(), vec![file])),
        }
    }
    for (origin, files) in wanted {
        let paths: std::collections::BTreeSet<&str> = files.iter().map(|file| file.0.origin.as_ref().expect("origin").1.as_str()).collect();
        let rendered: BTreeMap<String, Arc<str>> =
            origin.render(&|path| paths.contains(path)).into_iter().map(|(path, text)| (path, Arc::<str>::from(text))).collect();
        for file in files {
            let path = &file.0.origin.as_ref().expect("origin").1;
            let _ = file.0.text.set(rendered.get(path).cloned().expect("a state's file is in its render"));
        }
    }
}

/// What a compile's sink keeps: the texts the filter accepts, gathered from the rendering
/// threads.
#[derive(Default)]
pub struct Kept(Mutex<BTreeMap<String, String>>);

impl Kept {
    pub fn keep(&self, path: &str, text: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(path.to_string(), text.to_string());
    }

    pub fn into_inner(self) -> BTreeMap<String, String> {
        self.0.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn origin(renders: Arc<AtomicUsize>) -> Arc<Origin> {
        Origin::new(Box::new(move |wanted| {
            renders.fetch_add(1, Ordering::SeqCst);
            Ok([("nodes/a/routes", "a\n"), ("nodes/b/routes", "b\n")]
                .into_iter()
                .filter(|(path, _)| wanted(path))
                .map(|(path, text)| (path.to_string(), text.to_string()))
                .collect())
        }))
    }

    #[test]
    fn files_not_kept_hold_no_text_and_compare_by_digest() {
        let renders = Arc::new(AtomicUsize::new(0));
        let origin = origin(renders.clone());
        let a = FileText::rendered(digest_of("a\n"), None, &origin, "nodes/a/routes");
        let b = FileText::rendered(digest_of("b\n"), None, &origin, "nodes/b/routes");
        assert!(!a.is_held() && !b.is_held());
        assert_eq!(a, FileText::held("a\n"));
        assert_ne!(a, b);
        assert_eq!(renders.load(Ordering::SeqCst), 0, "comparing renders nothing");
        // A copy under another name (a route pin) shares the text once rendered.
        let pin = a.clone();
        materialise([&a, &b]);
        assert_eq!(renders.load(Ordering::SeqCst), 1, "one render for every file of a state");
        assert!(pin.is_held());
        assert_eq!((&*a, &*b), ("a\n", "b\n"));
    }

    #[test]
    fn a_text_asked_for_alone_renders_its_state_once() {
        let renders = Arc::new(AtomicUsize::new(0));
        let origin = origin(renders.clone());
        let a = FileText::rendered(digest_of("a\n"), None, &origin, "nodes/a/routes");
        let b = FileText::rendered(digest_of("b\n"), None, &origin, "nodes/b/routes");
        assert_eq!(a.text(), "a\n");
        assert_eq!(b.text(), "b\n");
        assert_eq!(renders.load(Ordering::SeqCst), 1);
    }
}
