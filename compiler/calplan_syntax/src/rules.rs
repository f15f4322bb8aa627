//! Rules reported while reading YAML, before any value is interpreted.

use calplan_diagnostics::declare_rule;

declare_rule! {
    /// ## What it does
    /// Reports text that is not well-formed YAML.
    ///
    /// ## Why is this bad?
    /// Nothing after the error can be read reliably.
    ///
    /// ## Example
    /// ```yaml
    /// serviceClusterIPs: [10.96.0.0/12
    /// ```
    pub static YAML_SYNTAX = ("E0001", "yaml-syntax", Error, "the file is not well-formed YAML");
}

declare_rule! {
    /// ## What it does
    /// Rejects YAML tags (`!name`, `!!type`) anywhere in the intent.
    ///
    /// ## Why is this bad?
    /// An unquoted value that begins with `!` is a tag, not text. The seed cluster's
    /// `nodeSelector: !has(route-reflector)` was read as an empty selector, which turned a
    /// node-specific peering into a global one. In current-state files calplan warns instead.
    ///
    /// ## Example
    /// ```yaml
    /// nodeSelector: !has(route-reflector)     # a tag on an empty value
    /// nodeSelector: '!has(route-reflector)'   # the selector that was meant
    /// ```
    pub static YAML_TAG = ("E0002", "yaml-tag", Error, "a YAML tag where a value was meant");
}

declare_rule! {
    /// ## What it does
    /// Reports fields the intent format does not have, suggesting the closest known one.
    ///
    /// ## Why is this bad?
    /// A misspelt field is otherwise ignored: the seed's `bolockSize: 24` left the pool at
    /// Calico's default block size.
    ///
    /// ## Example
    /// ```yaml
    /// pools:
    ///   - {name: p, cidr: 10.0.0.0/16, bolockSize: 24}   # did you mean `blockSize`?
    /// ```
    pub static UNKNOWN_FIELD = ("E0003", "unknown-field", Error, "a field the intent format does not have");
}

declare_rule! {
    /// ## What it does
    /// Reports values of the wrong shape: a missing required field, a string where a boolean
    /// belongs, a value outside its allowed set.
    ///
    /// ## Why is this bad?
    /// calplan never guesses: a value it cannot read is an error, not a silent default.
    ///
    /// ## Example
    /// ```yaml
    /// natOutgoing: yes        # YAML 1.2 booleans are `true` and `false`
    /// calicoVersion: 3.30     # the number 3.3; write "3.30"
    /// ```
    pub static SCHEMA_VIOLATION = ("E0004", "schema-violation", Error, "a value of the wrong type or shape");
}

declare_rule! {
    /// ## What it does
    /// Checks `apiVersion: calplan/v1` and `kind: ClusterIntent`.
    ///
    /// ## Why is this bad?
    /// A Calico resource or another tool's file passed by mistake would otherwise be read as
    /// an intent with most of its content reported as unknown.
    ///
    /// ## Example
    /// ```yaml
    /// apiVersion: projectcalico.org/v3   # this is a Calico resource, not an intent
    /// ```
    pub static WRONG_DOCUMENT_TYPE = ("E0005", "wrong-document-type", Error, "the document is not a calplan intent");
}

declare_rule! {
    /// ## What it does
    /// Reports an intent file with no document in it, or with more than one.
    ///
    /// ## Why is this bad?
    /// An empty intent would compile to an empty cluster, and a plan would delete everything.
    ///
    /// ## Example
    /// An empty file, or a file that is only comments.
    pub static EMPTY_OR_MULTIPLE_DOCUMENTS = ("E0006", "document-count", Error, "the intent must be exactly one YAML document");
}

declare_rule! {
    /// ## What it does
    /// Reports a key given twice in one mapping.
    ///
    /// ## Why is this bad?
    /// YAML forbids it, and parsers disagree on which value wins.
    ///
    /// ## Example
    /// ```yaml
    /// pools:
    ///   - {name: a, cidr: 10.0.0.0/16, cidr: 10.1.0.0/16}
    /// ```
    pub static DUPLICATE_KEY = ("E0007", "duplicate-key", Error, "a key given twice in one mapping");
}

declare_rule! {
    /// ## What it does
    /// Stops reading YAML that nests more than 64 levels deep, or whose aliases (`*name`)
    /// expand past 10,000 aliases, 250,000 copied nodes or 16 MiB of copied text. The limits
    /// apply to the intent and to every current-state file; `docs/limits.md` says why.
    ///
    /// ## Why is this bad?
    /// An alias copies what its anchor holds, so aliases of aliases multiply: a few kilobytes
    /// expand to gigabytes ("billion laughs"). Nesting that deep serves no configuration and
    /// overflows the stack of the passes that walk it. Intents and Calico resources need fewer
    /// than ten levels and a handful of aliases.
    ///
    /// ## Example
    /// ```yaml
    /// a: &a [x, x, x, x, x, x, x, x, x, x]
    /// b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    /// c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]   # and so on: 10^n copies
    /// ```
    pub static YAML_LIMIT = ("E0008", "yaml-limit", Error, "YAML that nests too deep or whose aliases expand too far");
}

declare_rule! {
    /// ## What it does
    /// Reports a password written inline — the secret itself where a reference to a Kubernetes
    /// Secret belongs — without repeating it: the value is masked in every snippet calplan
    /// prints, and no message names it.
    ///
    /// ## Why is this bad?
    /// calplan takes BGP passwords by reference only, so that no intent, plan or log holds one.
    /// A secret in the intent is in its version history already: rotate it.
    ///
    /// ## Example
    /// ```yaml
    /// password: s3cret        # write {secretKeyRef: {name: bgp-secrets, key: rr-password}}
    /// ```
    pub static INLINE_PASSWORD = ("E0009", "inline-password", Error, "a password written inline instead of by reference");
}

/// Every rule of this crate, in code order.
pub static ALL: &[&calplan_diagnostics::Rule] = &[
    &YAML_SYNTAX,
    &YAML_TAG,
    &UNKNOWN_FIELD,
    &SCHEMA_VIOLATION,
    &WRONG_DOCUMENT_TYPE,
    &EMPTY_OR_MULTIPLE_DOCUMENTS,
    &DUPLICATE_KEY,
    &YAML_LIMIT,
    &INLINE_PASSWORD,
];
