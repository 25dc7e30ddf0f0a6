//! Decision-log masking: remove input fields (passwords, tokens, personal data) before a
//! decision's input is logged or streamed, as OPA's `system.log.mask` does with JSON pointers.

use serde_json::Value;

use super::PolicyError;

/// JSON pointers into a decision, each starting with `/input/` (e.g. `/input/user/password`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputMask(Vec<Pointer>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pointer {
    /// As written, for the log's `erased` list.
    text: String,
    /// Below `/input`, unescaped.
    path: Vec<String>,
}

impl InputMask {
    pub fn parse(pointers: &[String]) -> Result<Self, PolicyError> {
        let mut out = Vec::with_capacity(pointers.len());
        for p in pointers {
            let rest = p
                .strip_prefix("/input/")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| PolicyError::BadMask(p.clone()))?;
            // RFC 6901 escapes: ~1 is '/', ~0 is '~'.
            out.push(Pointer {
                text: p.clone(),
                path: rest
                    .split('/')
                    .map(|s| s.replace("~1", "/").replace("~0", "~"))
                    .collect(),
            });
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every masked field present in `input`; absent ones are ignored.
    pub fn apply(&self, input: &mut Value) {
        for p in &self.0 {
            remove(input, &p.path);
        }
    }

    /// The pointers actually removed from `input`, for the log's `erased` list.
    pub fn erased(&self, input: &Value) -> Vec<String> {
        self.0
            .iter()
            .filter(|p| lookup(input, &p.path).is_some())
            .map(|p| p.text.clone())
            .collect()
    }
}

/// An array index as RFC 6901 writes one: `0`, or digits without a leading zero.
fn index(seg: &str) -> Option<usize> {
    let digits = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
    let canonical = seg == "0" || !seg.starts_with('0');
    if digits && canonical {
        seg.parse().ok()
    } else {
        None
    }
}

fn lookup<'a>(mut v: &'a Value, path: &[String]) -> Option<&'a Value> {
    for seg in path {
        v = match v {
            Value::Object(o) => o.get(seg)?,
            Value::Array(a) => a.get(index(seg)?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn remove(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut v = v;
    for seg in parents {
        v = match v {
            Value::Object(o) => match o.get_mut(seg) {
                Some(next) => next,
                None => return,
            },
            Value::Array(a) => match index(seg).and_then(|i| a.get_mut(i)) {
                Some(next) => next,
                None => return,
            },
            _ => return,
        };
    }
    match v {
        Value::Object(o) => {
            o.remove(last);
        }
        // Removing from an array would shift its other items: blank the item instead.
        Value::Array(a) => {
            if let Some(item) = index(last).and_then(|i| a.get_mut(i)) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mask(p: &[&str]) -> InputMask {
        InputMask::parse(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn removes_nested_fields_and_ignores_absent_ones() {
        let m = mask(&["/input/user/password", "/input/token", "/input/nope/x"]);
        let mut input = json!({"user": {"name": "a", "password": "p"}, "token": "t", "keep": 1});
        assert_eq!(m.erased(&input), ["/input/user/password", "/input/token"]);
        m.apply(&mut input);
        assert_eq!(input, json!({"user": {"name": "a"}, "keep": 1}));
    }

    #[test]
    fn array_items_are_blanked_and_escapes_work() {
        let m = mask(&[
            "/input/cards/1",
            "/input/a~1b",
            "/input/cards/+2",
            "/input/cards/02",
        ]);
        let mut input = json!({"cards": ["x", "y", "z"], "a/b": 1});
        assert_eq!(m.erased(&input), ["/input/cards/1", "/input/a~1b"]);
        m.apply(&mut input);
        assert_eq!(input, json!({"cards": ["x", null, "z"]}));
    }

    #[test]
    fn pointers_must_be_under_input() {
        for bad in ["/result", "input/x", "/input/", "/input"] {
            assert!(
                InputMask::parse(&[bad.to_string()]).is_err(),
                "{bad} accepted"
            );
        }
    }
}
