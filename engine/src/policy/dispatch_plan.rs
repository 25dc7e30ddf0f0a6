//! Rule dispatch by CloudTrail event name, planned at compile time.
//!
//! A detection pack is mostly rules gated on the event's name (`input.raw.eventName == "X"`
//! or `... in {"X", "Y"}`), and without help every event pays for every rule: cost grows
//! linearly with the pack. The plan reads the bundle's syntax once and, for each event name the
//! gates mention, writes a variant of the bundle without the rules whose gate that name cannot
//! pass; an event is then judged by its name's variant, or by the variant holding only ungated
//! rules when no gate mentions its name.
//!
//! Dropping a rule whose gate fails is exact: that rule cannot contribute for that event. Only
//! a rule with a single body and no `else` is considered, and only a gate that is a top-level
//! literal of that body. A rule whose every definition would go keeps one definition with its
//! gate replaced by `false`, so references to the rule still compile. `with` could evaluate a
//! rule on another input than the event's, but the VM refuses `with`, and dispatch only runs on
//! the VM (docs/decisions/0007-rule-dispatch.md).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use regorus::unstable::{BoolOp, Expr, Literal, LiteralStmt, Module, Parser, Rule, RuleHead};
use regorus::Value;

/// Most variants compiled for one bundle; a pack needing more is evaluated whole.
pub(crate) const MAX_VARIANTS: usize = 256;

/// A bundle split by event name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Each variant's modules, as (file, source).
    pub(crate) variants: Vec<Vec<(String, String)>>,
    /// Event name → variant.
    pub(crate) by_name: HashMap<String, usize>,
    /// The variant for an event whose name no gate mentions (or that has none).
    pub(crate) other: usize,
    /// Rules (`package:name`, the package as written) whose every definition is gated on
    /// event names: they hold no value in the `other` variant.
    pub(crate) all_gated: HashSet<String>,
}

/// A rule that runs only for some event names.
struct Gate {
    module: usize,
    /// Byte range of the whole rule, and of its gating literal.
    rule: (usize, usize),
    literal: (usize, usize),
    names: BTreeSet<String>,
    /// Package and rule head: definitions with the same key make one rule.
    key: String,
}

/// Plans dispatch for `modules`; `None` when no rule is gated on an event name, when a module
/// does not parse (compiling it reports that), or when more than [`MAX_VARIANTS`] are needed.
pub(crate) fn plan(modules: &[(String, String)]) -> Option<Plan> {
    let parsed: Vec<Module> = modules
        .iter()
        .map(|(file, src)| {
            let source = regorus::Source::from_contents(file.clone(), src.clone()).ok()?;
            // As `Engine::add_policy` parses: Rego v1 whether or not the module imports it.
            let mut parser = Parser::new(&source).ok()?;
            parser.enable_rego_v1().ok()?;
            parser.parse().ok()
        })
        .collect::<Option<_>>()?;
    let mut definitions: HashMap<String, usize> = HashMap::new();
    for module in &parsed {
        let package = module.package.refr.span().text();
        for rule in &module.policy {
            *definitions
                .entry(format!("{package}:{}", head_text(rule)))
                .or_default() += 1;
        }
    }
    let mut gates = Vec::new();
    let (mut some_gated, mut ungated) = (HashSet::new(), HashSet::new());
    for (m, module) in parsed.iter().enumerate() {
        let src = &modules[m].1;
        let package = module.package.refr.span().text().to_owned();
        let aliases = aliases(&parsed, module, &definitions);
        for rule in &module.policy {
            let key = format!("{package}:{}", head_text(rule));
            let gated = gate(rule, &aliases);
            let name = format!("{package}:{}", rule_name(rule));
            if gated.is_some() {
                some_gated.insert(name);
            } else {
                ungated.insert(name);
            }
            if let Some((literal, names)) = gated {
                let span = rule.span();
                gates.push(Gate {
                    module: m,
                    rule: with_quotes(src, (span.start as usize, span.end as usize)),
                    literal: with_quotes(src, literal),
                    names,
                    key,
                });
            }
        }
    }
    if gates.is_empty() {
        return None;
    }
    // Names that keep the same gated rules share one variant.
    let mut selections: BTreeMap<Vec<usize>, Vec<&str>> = BTreeMap::new();
    let all_names: BTreeSet<&str> = gates
        .iter()
        .flat_map(|g| g.names.iter().map(String::as_str))
        .collect();
    for name in all_names {
        let kept = (0..gates.len())
            .filter(|&g| gates[g].names.contains(name))
            .collect();
        selections.entry(kept).or_default().push(name);
    }
    if selections.len() + 1 > MAX_VARIANTS {
        return None;
    }
    let mut plan = Plan {
        variants: Vec::with_capacity(selections.len() + 1),
        by_name: HashMap::new(),
        other: selections.len(),
        all_gated: some_gated.difference(&ungated).cloned().collect(),
    };
    for (kept, names) in &selections {
        for name in names {
            plan.by_name.insert((*name).to_owned(), plan.variants.len());
        }
        plan.variants
            .push(variant(modules, &gates, &definitions, kept));
    }
    plan.variants
        .push(variant(modules, &gates, &definitions, &[]));
    Some(plan)
}

/// A span widened over the quotes of a string it starts or ends with (regorus's string spans
/// hold only the characters between them).
fn with_quotes(src: &str, (mut start, mut end): (usize, usize)) -> (usize, usize) {
    let quote = |b: Option<&u8>| matches!(b, Some(b'"' | b'`'));
    if start > 0 && quote(src.as_bytes().get(start - 1)) {
        start -= 1;
    }
    if quote(src.as_bytes().get(end)) {
        end += 1;
    }
    (start, end)
}

/// The modules with every gate not in `kept` dropped (or, for a rule's last definition,
/// neutralised).
fn variant(
    modules: &[(String, String)],
    gates: &[Gate],
    definitions: &HashMap<String, usize>,
    kept: &[usize],
) -> Vec<(String, String)> {
    let mut left = definitions.clone();
    let mut edits: Vec<Vec<((usize, usize), &str)>> = vec![Vec::new(); modules.len()];
    for (g, gate) in gates.iter().enumerate() {
        if kept.contains(&g) {
            continue;
        }
        let count = left
            .get_mut(&gate.key)
            .expect("every gate's rule was counted");
        if *count > 1 {
            *count -= 1;
            edits[gate.module].push((gate.rule, ""));
        } else {
            edits[gate.module].push((gate.literal, "false"));
        }
    }
    modules
        .iter()
        .zip(edits)
        .map(|((file, src), edits)| (file.clone(), blank(src, edits)))
        .collect()
}

/// Overwrites each range with its replacement padded by spaces, keeping line breaks so that
/// error positions still point at the file as written.
fn blank(src: &str, mut edits: Vec<((usize, usize), &str)>) -> String {
    if edits.is_empty() {
        return src.to_owned();
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(src.len());
    let mut at = 0;
    for ((start, end), replacement) in edits {
        out.push_str(&src[at..start]);
        out.push_str(replacement);
        let rest = &src[start..end];
        let mut skip = replacement.len();
        for c in rest.chars() {
            if c == '\n' {
                out.push('\n');
            } else if skip > 0 {
                skip = skip.saturating_sub(c.len_utf8());
            } else {
                out.push(' ');
            }
        }
        at = end;
    }
    out.push_str(&src[at..]);
    out
}

/// The names bound to `input.raw` in `module`: its own `import input.raw [as ct]`, and rules
/// `ct := input.raw` of its package that are the only definition of their name (a `default` or
/// a second definition could give `ct` another value) and that no import of `module` hides.
fn aliases(
    modules: &[Module],
    module: &Module,
    definitions: &HashMap<String, usize>,
) -> HashSet<String> {
    let package = module.package.refr.span().text();
    let mut names = HashSet::new();
    let mut imported = HashSet::new();
    for import in &module.imports {
        let name = match &import.r#as {
            Some(span) => span.text(),
            None => last_segment(&import.refr),
        };
        imported.insert(name);
        if is_input_raw(&import.refr) {
            names.insert(name.to_owned());
        }
    }
    for other in modules
        .iter()
        .filter(|m| m.package.refr.span().text() == package)
    {
        for rule in &other.policy {
            if let Rule::Spec {
                head:
                    RuleHead::Compr {
                        refr,
                        assign: Some(assign),
                        ..
                    },
                bodies,
                ..
            } = rule.as_ref()
            {
                let Some(name) = var_name(refr) else {
                    continue;
                };
                let single = definitions.get(&format!("{package}:{name}")) == Some(&1);
                if single
                    && bodies.is_empty()
                    && is_input_raw(&assign.value)
                    && !imported.contains(name)
                {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

/// The name an import binds without `as`: its last path segment.
fn last_segment(expr: &Expr) -> &str {
    match field(expr) {
        Some((_, name)) => name,
        None => var_name(expr).unwrap_or_default(),
    }
}

/// The gating literal of `rule` and the event names it lets through.
fn gate(rule: &Rule, aliases: &HashSet<String>) -> Option<((usize, usize), BTreeSet<String>)> {
    let Rule::Spec { head, bodies, .. } = rule else {
        return None;
    };
    if matches!(head, RuleHead::Func { .. }) || bodies.len() != 1 || bodies[0].is_else {
        return None;
    }
    let stmts = &bodies[0].query.stmts;
    // A body that declares a local named like an alias reads its own variable, not the event.
    let usable: HashSet<&str> = aliases
        .iter()
        .map(String::as_str)
        .filter(|a| !stmts.iter().any(|s| declares(s, a)))
        .collect();
    stmts.iter().find_map(|stmt| {
        if !stmt.with_mods.is_empty() {
            return None;
        }
        let Literal::Expr { expr, span } = &stmt.literal else {
            return None;
        };
        let names = match expr.as_ref() {
            Expr::BoolExpr {
                op: BoolOp::Eq,
                lhs,
                rhs,
                ..
            } => {
                let (name_ref, other) = if is_event_name(lhs, &usable) {
                    (lhs, rhs)
                } else {
                    (rhs, lhs)
                };
                if !is_event_name(name_ref, &usable) {
                    return None;
                }
                BTreeSet::from([string(other)?])
            }
            Expr::Membership {
                key: None,
                value,
                collection,
                ..
            } if is_event_name(value, &usable) => match collection.as_ref() {
                Expr::Set { items, .. } | Expr::Array { items, .. } => {
                    items.iter().map(string).collect::<Option<_>>()?
                }
                _ => return None,
            },
            _ => return None,
        };
        Some(((span.start as usize, span.end as usize), names))
    })
}

/// `input.raw.eventName` (or `input.raw["eventName"]`), directly or through an alias.
fn is_event_name(expr: &Expr, aliases: &HashSet<&str>) -> bool {
    match field(expr) {
        Some((base, "eventName")) => {
            is_input_raw(base) || var_name(base).is_some_and(|v| aliases.contains(v))
        }
        _ => false,
    }
}

fn is_input_raw(expr: &Expr) -> bool {
    matches!(field(expr), Some((base, "raw")) if var_name(base) == Some("input"))
}

/// `base.name` or `base["name"]`.
fn field(expr: &Expr) -> Option<(&Expr, &str)> {
    match expr {
        Expr::RefDot {
            refr,
            field: (_, Value::String(name)),
            ..
        } => Some((refr, name.as_ref())),
        Expr::RefBrack { refr, index, .. } => Some((refr, string_ref(index)?)),
        _ => None,
    }
}

fn var_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Var { span, .. } => Some(span.text()),
        _ => None,
    }
}

fn string_ref(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::String {
            value: Value::String(s),
            ..
        }
        | Expr::RawString {
            value: Value::String(s),
            ..
        } => Some(s.as_ref()),
        _ => None,
    }
}

fn string(expr: &regorus::unstable::Ref<Expr>) -> Option<String> {
    string_ref(expr).map(str::to_owned)
}

/// Whether `stmt` declares a local variable `name` (`some`, `:=`, `every`), destructuring
/// patterns included.
fn declares(stmt: &LiteralStmt, name: &str) -> bool {
    match &stmt.literal {
        Literal::SomeVars { vars, .. } => vars.iter().any(|v| v.text() == name),
        Literal::SomeIn { key, value, .. } => {
            key.as_ref().is_some_and(|k| binds(k, name)) || binds(value, name)
        }
        Literal::Every { key, value, .. } => {
            key.as_ref().is_some_and(|k| k.text() == name) || value.text() == name
        }
        Literal::Expr { expr, .. } => match expr.as_ref() {
            Expr::AssignExpr { lhs, .. } => binds(lhs, name),
            _ => false,
        },
        Literal::NotExpr { .. } => false,
    }
}

/// Whether the pattern `expr` binds `name`: the variable itself, or inside an array or object.
fn binds(expr: &Expr, name: &str) -> bool {
    match expr {
        Expr::Var { .. } => var_name(expr) == Some(name),
        Expr::Array { items, .. } => items.iter().any(|i| binds(i, name)),
        Expr::Object { fields, .. } => fields
            .iter()
            .any(|(_, k, v)| binds(k, name) || binds(v, name)),
        _ => false,
    }
}

/// The name a rule defines: its head's reference up to the first `.` or `[`.
fn rule_name(rule: &Rule) -> &str {
    let head = head_text(rule);
    head.split(['.', '[']).next().unwrap_or(head).trim()
}

fn head_text(rule: &Rule) -> &str {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr.span().text(),
        },
        Rule::Default { refr, .. } => refr.span().text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(src: &str) -> Vec<(String, String)> {
        vec![("p.rego".to_owned(), src.to_owned())]
    }

    const SRC: &str = "package tenants.acme
import rego.v1
ct := input.raw
v contains \"a\" if ct.eventName in {\"A\", \"B\"}
v contains \"b\" if {
\tct.eventName == \"B\"
}
v contains \"c\" if input.raw.eventName == \"C\"
w if input.raw.eventName == \"C\"
";

    #[test]
    fn names_with_the_same_rules_share_a_variant() {
        let plan = plan(&modules(SRC)).unwrap();
        // {A} -> a; {B} -> a, b; {C} -> c, w; and the rest.
        assert_eq!(plan.variants.len(), 4);
        assert_eq!(plan.by_name.len(), 3);
        let text = |name: Option<&str>| {
            let at = name.map_or(plan.other, |n| plan.by_name[n]);
            plan.variants[at][0].1.clone()
        };
        let a = text(Some("A"));
        assert!(a.contains("v contains \"a\"") && !a.contains("v contains \"b\""));
        // `w` has one definition: kept, its gate replaced by `false`.
        assert!(a.contains("w if false"), "{a}");
        let c = text(Some("C"));
        assert!(c.contains("w if input.raw.eventName == \"C\""), "{c}");
        assert!(c.contains("v contains \"c\"") && !c.contains("v contains \"a\""));
        let other = text(None);
        // `v` keeps one neutralised definition so that references to it still compile.
        assert_eq!(other.matches("v contains").count(), 1, "{other}");
        for variant in &plan.variants {
            assert_eq!(variant[0].1.lines().count(), SRC.lines().count());
        }
        // `ct` has a definition no name gates: only `v` and `w` are quiet for other names.
        assert_eq!(
            plan.all_gated,
            HashSet::from(["tenants.acme:v".to_owned(), "tenants.acme:w".to_owned()])
        );
    }

    #[test]
    fn nothing_to_plan_without_gates_or_with_unparsable_modules() {
        assert_eq!(
            plan(&modules("package tenants.acme\nx := input.raw.eventName")),
            None
        );
        assert_eq!(plan(&modules("package tenants.acme\nx := {")), None);
    }

    #[test]
    fn too_many_variants_turn_dispatch_off() {
        let gated = |n: usize| {
            let mut src = String::from("package tenants.acme\nimport rego.v1\n");
            for i in 0..n {
                src.push_str(&format!(
                    "v contains {i} if input.raw.eventName == \"E{i}\"\n"
                ));
            }
            modules(&src)
        };
        // One variant per name, plus the one for other names.
        assert_eq!(
            plan(&gated(MAX_VARIANTS - 1)).unwrap().variants.len(),
            MAX_VARIANTS
        );
        assert_eq!(plan(&gated(MAX_VARIANTS)), None);
    }

    #[test]
    fn blanking_keeps_lines_and_pads() {
        assert_eq!(blank("ab\ncd ef", vec![((1, 6), "x")]), "ax\n   ef");
        assert_eq!(blank("abcdef", vec![((0, 3), "")]), "   def");
    }
}
