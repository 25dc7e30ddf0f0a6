//! `numbers.range` and `numbers.range_step` with a bound on how many elements they build.
//!
//! regorus sizes a range's array from its arguments before it builds it, and checks the
//! evaluation time limit only between evaluation steps: `numbers.range(1, input.n)` asked with
//! `n = 1e12` would request terabytes in one allocation and abort the process before any limit
//! could stop it. Both evaluators get these two builtins behind a check of the span instead:
//! past [`MAX_RANGE_ELEMENTS`] the evaluation stops with a limit error, never an undefined
//! value (which a `not` in the policy would turn into a match).

use std::cell::RefCell;
use std::sync::Arc;

use regorus::unstable::{BuiltinFcn, Expr, Ref, Source, Span, BUILTINS};
use regorus::{LimitError, Value};

/// Most elements one `numbers.range` or `numbers.range_step` call may build: about 60 MB of
/// values, and a few tens of milliseconds, well inside the default evaluation time limit.
pub const MAX_RANGE_ELEMENTS: u64 = 1_000_000;

/// Rough size of one built element (a value slot and its number), for the limit error.
const BYTES_PER_ELEMENT: u64 = 56;

/// One bounded builtin: its name, and what each evaluator calls instead (for the VM, with its
/// argument count, as regorus's builtin table has it).
struct Guarded {
    name: &'static str,
    on_vm: BuiltinFcn,
    on_interpreter: fn(Vec<Value>) -> anyhow::Result<Value>,
}

const GUARDED: [Guarded; 2] = [
    Guarded {
        name: "numbers.range",
        on_vm: (range_on_vm, 2),
        on_interpreter: range_on_interpreter,
    },
    Guarded {
        name: "numbers.range_step",
        on_vm: (range_step_on_vm, 3),
        on_interpreter: range_step_on_interpreter,
    },
];

thread_local! {
    /// Why this thread's latest guarded call was refused, for the evaluation's error.
    static REFUSED: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The source position and argument expressions a builtin reports errors against; an
    /// extension has none of its own (the VM passes the same kind of placeholders).
    static PLACEHOLDERS: (Span, Vec<Ref<Expr>>) = placeholders();
}

fn placeholders() -> (Span, Vec<Ref<Expr>>) {
    let source = Source::from_contents("<builtin>".into(), String::new())
        .expect("an empty source is within every limit");
    let span = Span {
        source,
        line: 1,
        col: 1,
        start: 0,
        end: 0,
    };
    let exprs = (0..3)
        .map(|_| {
            Ref::new(Expr::Null {
                span: span.clone(),
                value: Value::Null,
                eidx: 0,
            })
        })
        .collect();
    (span, exprs)
}

/// How many elements `name(args)` would build, exactly (regorus counts integers of any size);
/// `None` when regorus answers without building anything: arguments that are not integers.
/// A span past `i64` counts as `u128::MAX`: regorus would not build it either, but it is
/// refused rather than left undefined, which a `not` would turn into a match.
fn elements(name: &str, args: &[Value]) -> Option<u128> {
    let from = args.first()?.as_number().ok()?;
    let to = args.get(1)?.as_number().ok()?;
    if !from.is_integer() || !to.is_integer() {
        return None;
    }
    let Some(span) = to.sub(from).ok().and_then(|d| d.as_i64()) else {
        return Some(u128::MAX);
    };
    let step = match name {
        "numbers.range_step" => {
            let step = args.get(2)?.as_number().ok()?;
            // A step past i64 is answered by regorus without building (one element for OPA).
            step.is_integer()
                .then(|| step.as_i64().unwrap_or(i64::MAX))?
        }
        _ => 1,
    };
    Some(u128::from(span.unsigned_abs()) / u128::from(step.unsigned_abs().max(1)) + 1)
}

fn positive_integer(v: &Value) -> bool {
    v.as_number()
        .is_ok_and(|n| n.is_integer() && n.is_positive() && n.as_i64() != Some(0))
}

/// A limit error when `name(args)` would build more than [`MAX_RANGE_ELEMENTS`].
fn check(name: &str, args: &[Value]) -> anyhow::Result<()> {
    match elements(name, args) {
        Some(n) if n > u128::from(MAX_RANGE_ELEMENTS) => {
            let count = match n {
                u128::MAX => format!("more than {}", i64::MAX),
                n => n.to_string(),
            };
            Err(refusal(
                format!(
                    "{name} would build {count} elements; one call may build at most \
                     {MAX_RANGE_ELEMENTS} (bound the span by your data, not by the input)"
                ),
                n,
            ))
        }
        _ => Ok(()),
    }
}

/// The error of a refused call, its reason kept for [`take_refusal`]. A limit error, so that the
/// VM propagates it even without strict builtin errors; the reason as its message, which the
/// interpreter reports.
fn refusal(reason: String, elements: u128) -> anyhow::Error {
    REFUSED.with(|r| *r.borrow_mut() = Some(reason.clone()));
    let usage = u64::try_from(elements.saturating_mul(u128::from(BYTES_PER_ELEMENT)));
    anyhow::Error::new(LimitError::MemoryLimitExceeded {
        usage: usage.unwrap_or(u64::MAX),
        limit: MAX_RANGE_ELEMENTS * BYTES_PER_ELEMENT,
    })
    .context(reason)
}

/// 2^53: past it, not every integer is a float.
const EXACT_IN_F64: f64 = 9_007_199_254_740_992.0;

/// `args` with each integral float past 2^53 (JSON's `1e16`) turned into the integer it stands
/// for: regorus's loop adds 1 to such a float, which leaves it as it was, and would never end.
/// `Ok(None)` when there is none; `Err` with a float too large for that.
fn exact(args: &[Value]) -> Result<Option<Vec<Value>>, f64> {
    let inexact = |v: &Value| {
        v.as_number()
            .ok()
            .and_then(|n| n.as_f64())
            .filter(|f| f.fract() == 0.0 && f.abs() > EXACT_IN_F64)
    };
    if !args.iter().any(|v| inexact(v).is_some()) {
        return Ok(None);
    }
    args.iter()
        .map(|v| match inexact(v) {
            Some(f) if f.abs() < 2f64.powi(127) => Ok(Value::from(f as i128)),
            Some(f) => Err(f),
            None => Ok(v.clone()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The reason of this thread's latest refusal, if any; clears it.
pub(crate) fn take_refusal() -> Option<String> {
    REFUSED.with(|r| r.borrow_mut().take())
}

fn call_builtin(
    name: &str,
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    let exact_args;
    let args = match exact(args) {
        Ok(None) => args,
        Ok(Some(converted)) => {
            exact_args = converted;
            &exact_args[..]
        }
        Err(f) => {
            let reason = format!(
                "{name}: {f:e} is too large to count from exactly; one call may build at most \
                 {MAX_RANGE_ELEMENTS} elements"
            );
            return Err(refusal(reason, u128::MAX));
        }
    };
    // regorus 0.14.1 checks the step only with strict builtin errors: without them a step of 0
    // divides by zero, and a negative one sizes the array from a negative count (both panic).
    if name == "numbers.range_step" && !args.get(2).is_some_and(positive_integer) {
        return match strict {
            true => Err(anyhow::anyhow!(
                "numbers.range_step: step must be a positive integer"
            )),
            false => Ok(Value::Undefined),
        };
    }
    check(name, args)?;
    let (builtin, _) = BUILTINS
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("regorus has no builtin {name}"))?;
    builtin(span, params, args, strict)
}

fn range_on_vm(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    call_builtin("numbers.range", span, params, args, strict)
}

fn range_step_on_vm(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    call_builtin("numbers.range_step", span, params, args, strict)
}

/// The interpreter calls an extension before a builtin of the same name, but treats any error
/// of an extension as the evaluation's: a builtin's own error is made undefined here, as the
/// interpreter does for builtins (the bundles run without strict builtin errors).
fn on_interpreter(name: &str, args: Vec<Value>) -> anyhow::Result<Value> {
    PLACEHOLDERS.with(|(span, exprs)| {
        match call_builtin(
            name,
            span,
            &exprs[..args.len().min(exprs.len())],
            &args,
            false,
        ) {
            Err(e) if e.downcast_ref::<LimitError>().is_some() => Err(e),
            Err(_) => Ok(Value::Undefined),
            ok => ok,
        }
    })
}

fn range_on_interpreter(args: Vec<Value>) -> anyhow::Result<Value> {
    on_interpreter("numbers.range", args)
}

fn range_step_on_interpreter(args: Vec<Value>) -> anyhow::Result<Value> {
    on_interpreter("numbers.range_step", args)
}

/// Puts the bounded builtins in front of regorus's own in `engine`'s interpreter.
pub(crate) fn guard_interpreter(engine: &mut regorus::Engine) {
    for g in &GUARDED {
        // Only fails for a name added twice, which a fresh engine cannot have.
        let _ = engine.add_extension(g.name.into(), g.on_vm.1, Box::new(g.on_interpreter));
    }
}

/// Replaces the two builtins in a VM program compiled to call them.
pub(crate) fn guard_program(program: &mut Arc<regorus::rvm::Program>) {
    let guarded = |name: &str| GUARDED.iter().find(|g| g.name == name);
    if !program
        .builtin_info_table
        .iter()
        .any(|b| guarded(&b.name).is_some())
    {
        return;
    }
    let program = Arc::make_mut(program);
    for (info, resolved) in program
        .builtin_info_table
        .iter()
        .zip(program.resolved_builtins.iter_mut())
    {
        if let Some(g) = guarded(&info.name) {
            *resolved = g.on_vm;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::{json, Value as Json};

    use crate::policy::{
        Bundle, CompileOptions, Evaluator, PolicyContext, PolicyError, RulePath, TenantPolicy,
    };
    use crate::TenantId;

    use super::MAX_RANGE_ELEMENTS;

    /// Rules whose range spans come from the caller, the case the bound is for.
    const SRC: &str = r#"
        package tenants.acme
        import rego.v1
        default decision := "none"
        decision := count(numbers.range(input.from, input.to)) if input.op == "range"
        decision := numbers.range_step(input.from, input.to, input.step) if input.op == "step"
        decision := "blocked" if {
            input.op == "not"
            not numbers.range(input.from, input.to)
        }
    "#;

    fn policy(evaluator: Evaluator) -> TenantPolicy {
        let bundle = Bundle {
            tenant: TenantId::parse("acme").unwrap(),
            modules: vec![("policy.rego".into(), SRC.into())],
            data: None,
            revision: None,
            mask: Vec::new(),
            packs: Vec::new(),
        };
        let options = CompileOptions {
            evaluator,
            ..Default::default()
        };
        let p = TenantPolicy::compile_with(&bundle, "decision", &options).unwrap();
        assert_eq!(p.evaluator_status().evaluator, evaluator, "{p:?}");
        p
    }

    fn ask(p: &mut TenantPolicy, input: Json) -> Result<Json, PolicyError> {
        let ctx = PolicyContext::neutral(Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap());
        let path = RulePath::from_dotted("decision").unwrap();
        p.query(&path, Some(&input), &ctx)
            .map(|a| a.result.unwrap_or(Json::Null))
    }

    #[test]
    fn spans_within_the_bound_answer_as_regorus_does() {
        for evaluator in [Evaluator::Interpreter, Evaluator::Vm] {
            let mut p = policy(evaluator);
            let max = MAX_RANGE_ELEMENTS as i64;
            let cases = [
                (json!({"op": "range", "from": 1, "to": 5}), json!(5)),
                (json!({"op": "range", "from": 5, "to": 1}), json!(5)),
                (json!({"op": "range", "from": 1, "to": max}), json!(max)),
                (
                    json!({"op": "step", "from": 1, "to": 10, "step": 4}),
                    json!([1, 5, 9]),
                ),
                // Not integers: the builtin's own error, undefined without strict errors.
                (json!({"op": "range", "from": 1.5, "to": 3}), json!("none")),
                // A step that is not a positive integer: undefined (regorus would panic).
                (
                    json!({"op": "step", "from": 1, "to": 9, "step": 0}),
                    json!("none"),
                ),
                (
                    json!({"op": "step", "from": 1, "to": 10, "step": -1}),
                    json!("none"),
                ),
                (
                    json!({"op": "step", "from": 1, "to": 10, "step": 0.5}),
                    json!("none"),
                ),
                (
                    json!({"op": "step", "from": 1, "to": 10, "step": "2"}),
                    json!("none"),
                ),
                // Integers past 2^53 are counted exactly.
                (
                    json!({"op": "step", "from": 1, "to": 10, "step": 1u64 << 60}),
                    json!([1]),
                ),
                (
                    json!({"op": "range", "from": (1u64 << 60) + 1, "to": (1u64 << 60) + 3}),
                    json!(3),
                ),
                // regorus answers a range of non-integers undefined, however wide.
                (
                    json!({"op": "range", "from": 0.5, "to": 1e12}),
                    json!("none"),
                ),
                // Floats past 2^53 count as the integers they stand for (regorus's loop would
                // add 1 to 1e16 forever).
                (
                    json!({"op": "range", "from": 1e16, "to": 10_000_000_000_000_002u64}),
                    json!(3),
                ),
                (
                    json!({"op": "step", "from": 1e17, "to": 1e17, "step": 1e16}),
                    json!([100_000_000_000_000_000u64]),
                ),
                (json!({"op": "not", "from": 1, "to": 3}), json!("none")),
            ];
            for (input, want) in cases {
                assert_eq!(
                    ask(&mut p, input.clone()).unwrap(),
                    want,
                    "{evaluator} {input}"
                );
            }
        }
    }

    #[test]
    fn a_span_past_the_bound_stops_the_evaluation_instead_of_the_process() {
        for evaluator in [Evaluator::Interpreter, Evaluator::Vm] {
            let mut p = policy(evaluator);
            let over = MAX_RANGE_ELEMENTS as i64 + 1;
            let inputs = [
                json!({"op": "range", "from": 1, "to": 1e12}),
                json!({"op": "range", "from": 1, "to": over}),
                json!({"op": "range", "from": 0, "to": -over}),
                json!({"op": "step", "from": 0, "to": 1e15, "step": 2}),
                // Integers past 2^53 (not floats: JSON integers stay integers).
                json!({"op": "range", "from": 1, "to": 9_007_199_254_740_993u64}),
                json!({"op": "range", "from": 1, "to": -9_007_199_254_740_993i64}),
                json!({"op": "range", "from": i64::MIN, "to": i64::MAX}),
                json!({"op": "range", "from": 0, "to": u64::MAX}),
                json!({"op": "step", "from": 0, "to": 1u64 << 62, "step": 3}),
                json!({"op": "range", "from": 1e300, "to": 1e300}),
                // Refused, not undefined: `not` must not turn the refusal into a match.
                json!({"op": "not", "from": 1, "to": 1e12}),
            ];
            for input in inputs {
                match ask(&mut p, input.clone()) {
                    Err(PolicyError::ValueTooLarge(why)) => {
                        assert!(why.contains("numbers.range"), "{evaluator} {input}: {why}");
                        assert!(why.contains("at most 1000000"), "{evaluator}: {why}");
                    }
                    other => panic!("{evaluator} {input}: {other:?}"),
                }
            }
            // The engine is fine afterwards.
            let ok = json!({"op": "range", "from": 1, "to": 3});
            assert_eq!(ask(&mut p, ok).unwrap(), json!(3), "{evaluator}");
        }
    }
}
