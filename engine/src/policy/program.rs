//! A bundle's rules compiled to regorus's register VM (RVM): the fast path for rule evaluation.
//!
//! The tree-walking interpreter costs about 3.5× more per evaluation (docs/decisions/0007).
//! Not every Rego construct compiles to the VM yet (`with`, some partial-object shapes); a rule
//! that does not is answered by the interpreter, so compiling is an optimisation, never a
//! reason to refuse a bundle.

use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::vm::{RegoVM, VmError};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{CompiledPolicy, Rc};

use super::{bounded_range, PolicyError};

/// The VM's own instruction cap (regorus defaults to 25 000) is lifted: the evaluation time
/// limit is the guard rail, as it is for the interpreter, and a legitimate policy over a large
/// `data.json` may well run more instructions than that.
const MAX_INSTRUCTIONS: usize = usize::MAX;

/// Compiled rules plus a VM to run them. Cloning shares the program and gives a fresh VM.
pub(crate) struct Program {
    program: Arc<regorus::rvm::Program>,
    policy: CompiledPolicy,
    data: regorus::Value,
    timer: ExecutionTimerConfig,
    vm: RegoVM,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("entry_points", &self.program.entry_points.len())
            .finish_non_exhaustive()
    }
}

impl Clone for Program {
    fn clone(&self) -> Self {
        Self::instantiate(
            self.program.clone(),
            self.policy.clone(),
            self.data.clone(),
            self.timer,
        )
    }
}

impl Program {
    /// Compiles `rule` (a full rule path such as `data.tenants.acme.decision`) and, with
    /// `also_under` a package, every other rule under it too when the VM takes them all, so that
    /// decision API queries of any rule run on the VM. Returns why not when the VM cannot take
    /// even `rule`.
    pub(crate) fn compile(
        engine: &mut regorus::Engine,
        rule: &str,
        also_under: Option<&str>,
        timer: ExecutionTimerConfig,
    ) -> Result<Self, String> {
        let policy = engine
            .compile_with_entrypoint(&Rc::from(rule))
            .map_err(|e| e.to_string())?;
        let mut names: Vec<&str> = vec![rule];
        if let Some(package) = also_under {
            names.extend(
                policy
                    .get_rules()
                    .iter()
                    .filter(|(path, defs)| {
                        path.as_str() != rule
                            && path
                                .strip_prefix(package)
                                .is_some_and(|r| r.starts_with('.'))
                            && !defs.iter().any(|d| is_function(d))
                    })
                    .map(|(path, _)| path.as_str()),
            );
        }
        let mut program = Compiler::compile_from_policy(&policy, &names)
            .or_else(|e| match names.len() {
                1 => Err(e),
                _ => Compiler::compile_from_policy(&policy, &[rule]),
            })
            .map_err(|e| e.to_string())?;
        bounded_range::guard_program(&mut program);
        Self::ready(engine, program, policy, timer)
    }

    fn ready(
        engine: &regorus::Engine,
        program: Arc<regorus::rvm::Program>,
        policy: CompiledPolicy,
        timer: ExecutionTimerConfig,
    ) -> Result<Self, String> {
        let data = engine.get_data();
        let mut compiled = Self::instantiate(program, policy, data, timer);
        // Rules and data.json must not both define a path; the VM checks that once, here.
        compiled
            .vm
            .set_data(compiled.data.clone())
            .map_err(|e| e.to_string())?;
        Ok(compiled)
    }

    fn instantiate(
        program: Arc<regorus::rvm::Program>,
        policy: CompiledPolicy,
        data: regorus::Value,
        timer: ExecutionTimerConfig,
    ) -> Self {
        let mut vm = RegoVM::new_with_policy(policy.clone());
        vm.load_program(program.clone());
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        // OPA's default, and the interpreter's here: a builtin's error (`to_number("abc")`)
        // makes its expression undefined rather than failing the whole evaluation.
        vm.set_strict_builtin_errors(false);
        vm.set_execution_timer_config(Some(timer));
        // Already checked against the program in `compile`; a clone only shares it again.
        let _ = vm.set_data(data.clone());
        Self {
            program,
            policy,
            data,
            timer,
            vm,
        }
    }

    /// The full rule paths compiled.
    pub(crate) fn entry_points(&self) -> Vec<String> {
        self.program.entry_points.keys().cloned().collect()
    }

    /// Whether `path` (a full rule path) was compiled.
    pub(crate) fn has(&self, path: &str) -> bool {
        self.program.get_entry_point(path).is_some()
    }

    /// Evaluates the compiled rule `path` on `input`; `Undefined` when the rule is.
    pub(crate) fn eval(
        &mut self,
        path: &str,
        input: regorus::Value,
    ) -> Result<regorus::Value, PolicyError> {
        self.vm.set_input(input);
        self.vm
            .execute_entry_point_by_name(path)
            .map_err(|e| match e {
                // Without regorus's allocator limits, only a bounded builtin reports memory.
                VmError::MemoryLimitExceeded { .. } => PolicyError::ValueTooLarge(
                    bounded_range::take_refusal().unwrap_or_else(|| e.to_string()),
                ),
                // A pattern too large to compile fails at once, like a refused range.
                VmError::RegexSizeLimitExceeded { .. } => PolicyError::ValueTooLarge(e.to_string()),
                VmError::TimeLimitExceeded { .. }
                | VmError::InstructionLimitExceeded { .. }
                | VmError::MemoryBudgetExceeded { .. } => PolicyError::LimitExceeded(e.to_string()),
                e => PolicyError::Eval(e.to_string()),
            })
    }
}

fn is_function(rule: &regorus::unstable::Rule) -> bool {
    use regorus::unstable::{Rule, RuleHead};
    match rule {
        Rule::Spec { head, .. } => matches!(head, RuleHead::Func { .. }),
        Rule::Default { args, .. } => !args.is_empty(),
    }
}
