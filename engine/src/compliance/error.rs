use thiserror::Error;

/// Why a pack, a reference to one, or its tests were refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PackError {
    #[error("pack.json: {0}")]
    Manifest(String),
    #[error("pack name {0:?} is not valid: use 1-64 of a-z, 0-9 and '_', starting with a letter (it is the Rego package packs.<name>)")]
    BadName(String),
    #[error("pack version {0:?} is not valid: use 1-32 of A-Z, a-z, 0-9, '.', '-' and '+', starting with a digit")]
    BadVersion(String),
    #[error("control id {0:?} is not valid: use 1-64 of A-Z, a-z, 0-9, '.', '_' and '-'")]
    BadControlId(String),
    #[error("control {0:?} is declared twice")]
    DuplicateControl(String),
    #[error(
        "control {control:?} maps to framework {framework:?}, which the pack does not declare"
    )]
    UnknownFramework { control: String, framework: String },
    #[error(
        "control {control:?}: resource id {pointer:?} is not a JSON pointer (it starts with '/')"
    )]
    BadPointer { control: String, pointer: String },
    #[error("{file}: {message}")]
    Rego { file: String, message: String },
    #[error("{file}: package {package} is not this pack's; use `package {expected}`")]
    WrongPackage {
        file: String,
        package: String,
        expected: String,
    },
    #[error("{file}: a `fired` rule must name its control literally (`fired contains \"4.1\" if {{ … }}`), not {key}")]
    UnnamedControl { file: String, key: String },
    #[error("{file}: rule fires control {control:?}, which pack.json does not declare")]
    UndeclaredControl { file: String, control: String },
    #[error("control {0:?} is declared in pack.json but no `fired` rule names it")]
    ControlWithoutRule(String),
    #[error("the pack has no Rego modules")]
    NoModules,
    #[error("evaluating the pack: {0}")]
    Eval(String),
    #[error("tests: {0}")]
    Tests(String),
}
