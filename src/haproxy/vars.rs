//! Variables: named samples kept for the process, the session, the transaction or one
//! direction of it, set by `set-var` and read by the `var()` fetch.
//!
//! Reproduces `vars.c` of HAProxy 2.6 (variables appeared in 1.6; 1.5 has none). A
//! variable's name starts with its scope: `proc.` (the whole process, also set by the
//! `global` section's `set-var`), `sess.` (the client connection), `txn.` (one HTTP
//! transaction), `req.` and `res.` (the request or response half of it). The
//! process's variables live in `Haproxy::vars_proc`, the others in `Session::vars`;
//! `txn.`, `req.` and `res.` are pruned when a transaction ends (`vars_prune`). A
//! session that never sets a variable allocates nothing: the maps start empty.

use std::fmt;

use crate::haproxy::sample::SmpData;

/// Where a variable lives (`enum vars_scope`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarsScope {
    /// `proc.`: the whole process.
    SCOPE_PROC,
    /// `sess.`: the client connection.
    SCOPE_SESS,
    /// `txn.`: the HTTP transaction.
    SCOPE_TXN,
    /// `req.`: the request of the transaction.
    SCOPE_REQ,
    /// `res.`: the response of the transaction.
    SCOPE_RES,
}

impl fmt::Display for VarsScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarsScope::SCOPE_PROC => "proc",
            VarsScope::SCOPE_SESS => "sess",
            VarsScope::SCOPE_TXN => "txn",
            VarsScope::SCOPE_REQ => "req",
            VarsScope::SCOPE_RES => "res",
        })
    }
}

/// A variable's scope and name, as written after `set-var(` or inside `var(`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarName {
    /// The scope (the part before the first dot).
    pub scope: VarsScope,
    /// The name within the scope.
    pub name: Box<str>,
}

impl fmt::Display for VarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.scope, self.name)
    }
}

/// vars.c:register_name() in 2.6, its checks: `scope.name`, where the name is made of
/// letters, digits, `.` and `_`.
pub fn register_name(text: &str) -> Result<VarName, String> {
    let scope_err = || {
        format!(
            "invalid variable name '{text}'. A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'"
        )
    };
    let (scope, name) = text.split_once('.').ok_or_else(scope_err)?;
    let scope = match scope {
        "proc" => VarsScope::SCOPE_PROC,
        "sess" => VarsScope::SCOPE_SESS,
        "txn" => VarsScope::SCOPE_TXN,
        "req" => VarsScope::SCOPE_REQ,
        "res" => VarsScope::SCOPE_RES,
        _ => return Err(scope_err()),
    };
    if name.is_empty() {
        return Err(format!("Empty variable name in '{text}'"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.')) {
        return Err(format!("invalid char '{c}' in variable name '{text}'"));
    }
    Ok(VarName { scope, name: name.into() })
}

/// The variables of one scope (`struct vars`): few, so a vector searched by name. Boxed,
/// and allocated by the first `set`: a session has four scopes, and a configuration
/// without variables should not pay 24 bytes for each in every session.
#[derive(Clone, Debug, Default)]
#[expect(clippy::box_collection, reason = "a thin pointer: 8 bytes in every session, not a Vec's 24")]
pub struct VarMap(Option<Box<Vec<Var>>>);

/// A variable: its name (without the scope) and its value.
type Var = (Box<str>, SmpData);

impl VarMap {
    fn vars(&self) -> &[Var] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The variable `name`, if set.
    pub fn get(&self, name: &str) -> Option<&SmpData> {
        self.vars().iter().find(|(n, _)| &**n == name).map(|(_, v)| v)
    }

    /// Sets (or replaces) `name`.
    pub fn set(&mut self, name: &str, v: SmpData) {
        let vars = self.0.get_or_insert_default();
        match vars.iter_mut().find(|(n, _)| &**n == name) {
            Some(slot) => slot.1 = v,
            None => vars.push((name.into(), v)),
        }
    }

    /// Removes `name`.
    pub fn unset(&mut self, name: &str) {
        if let Some(vars) = self.0.as_mut() {
            vars.retain(|(n, _)| &**n != name);
        }
    }

    /// Every variable, in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SmpData)> {
        self.vars().iter().map(|(n, v)| (&**n, v))
    }

    /// Forgets every variable (keeps the allocation).
    pub fn clear(&mut self) {
        if let Some(vars) = self.0.as_mut() {
            vars.clear();
        }
    }
}

/// A session's variables (`sess->vars`, `s->vars_txn`, `s->vars_reqres`).
#[derive(Clone, Debug, Default)]
pub struct SessVars {
    /// `sess.` variables.
    pub sess: VarMap,
    /// `txn.` variables.
    pub txn: VarMap,
    /// `req.` variables.
    pub req: VarMap,
    /// `res.` variables.
    pub res: VarMap,
}

impl SessVars {
    /// vars.c:vars_prune() in 2.6, for the transaction's scopes: called when a
    /// transaction ends, so that the next request on the connection starts clean.
    pub fn vars_prune(&mut self) {
        self.txn.clear();
        self.req.clear();
        self.res.clear();
    }
}

/// The variables a sample expression may read and write: the process's, and the
/// session's when there is one (the `global` section's `set-var` runs without one).
pub struct Vars<'a> {
    /// `proc.` variables.
    pub proc: &'a mut VarMap,
    /// The session's variables.
    pub sess: Option<&'a mut SessVars>,
}

impl Vars<'_> {
    fn map(&self, scope: VarsScope) -> Option<&VarMap> {
        match scope {
            VarsScope::SCOPE_PROC => Some(self.proc),
            VarsScope::SCOPE_SESS => self.sess.as_deref().map(|v| &v.sess),
            VarsScope::SCOPE_TXN => self.sess.as_deref().map(|v| &v.txn),
            VarsScope::SCOPE_REQ => self.sess.as_deref().map(|v| &v.req),
            VarsScope::SCOPE_RES => self.sess.as_deref().map(|v| &v.res),
        }
    }

    fn map_mut(&mut self, scope: VarsScope) -> Option<&mut VarMap> {
        match scope {
            VarsScope::SCOPE_PROC => Some(self.proc),
            VarsScope::SCOPE_SESS => self.sess.as_deref_mut().map(|v| &mut v.sess),
            VarsScope::SCOPE_TXN => self.sess.as_deref_mut().map(|v| &mut v.txn),
            VarsScope::SCOPE_REQ => self.sess.as_deref_mut().map(|v| &mut v.req),
            VarsScope::SCOPE_RES => self.sess.as_deref_mut().map(|v| &mut v.res),
        }
    }

    /// vars.c:vars_get_by_desc() in 2.6: the value of a variable, if set.
    pub fn vars_get_by_desc(&self, v: &VarName) -> Option<&SmpData> {
        self.map(v.scope)?.get(&v.name)
    }

    /// vars.c:var_set() in 2.6: sets a variable; false when its scope does not exist
    /// here (a session scope without a session).
    pub fn var_set(&mut self, v: &VarName, data: SmpData) -> bool {
        match self.map_mut(v.scope) {
            Some(m) => {
                m.set(&v.name, data);
                true
            }
            None => false,
        }
    }

    /// vars.c:var_unset() in 2.6.
    pub fn var_unset(&mut self, v: &VarName) {
        if let Some(m) = self.map_mut(v.scope) {
            m.unset(&v.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_a_known_scope() {
        let v = register_name("txn.foo").unwrap();
        assert_eq!((v.scope, &*v.name), (VarsScope::SCOPE_TXN, "foo"));
        assert_eq!(v.to_string(), "txn.foo");
        assert!(register_name("foo").unwrap_err().contains("must be start by its scope"));
        assert!(register_name("bar.foo").is_err());
        assert!(register_name("txn.").is_err());
        assert!(register_name("txn.a-b").is_err());
    }

    #[test]
    fn scopes_are_separate_and_txn_ones_pruned() {
        let mut proc = VarMap::default();
        let mut sv = SessVars::default();
        let mut vars = Vars { proc: &mut proc, sess: Some(&mut sv) };
        for (n, i) in [("proc.a", 1), ("sess.a", 2), ("txn.a", 3), ("req.a", 4), ("res.a", 5)] {
            assert!(vars.var_set(&register_name(n).unwrap(), SmpData::Sint(i)));
        }
        assert_eq!(vars.vars_get_by_desc(&register_name("sess.a").unwrap()), Some(&SmpData::Sint(2)));
        vars.var_unset(&register_name("res.a").unwrap());
        assert_eq!(vars.vars_get_by_desc(&register_name("res.a").unwrap()), None);
        sv.vars_prune();
        assert_eq!(sv.txn.get("a"), None);
        assert_eq!(sv.sess.get("a"), Some(&SmpData::Sint(2)));
        let mut none = Vars { proc: &mut proc, sess: None };
        assert!(!none.var_set(&register_name("txn.b").unwrap(), SmpData::Bool(true)));
    }
}
