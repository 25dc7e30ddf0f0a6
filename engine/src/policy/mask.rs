//! Decision-log masking: remove input fields (passwords, tokens, personal data) before a
//! decision's input is logged or streamed, as OPA's `system.log.mask` does with JSON pointers.

use serde_json::Value;

use crate::Event;

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

    /// Removes every masked field from what is kept of a judged event, as `apply` would from
    /// its input document (`/input/raw/…` and `/input/event/{field}`): fields of the record go,
    /// optional normalized fields become absent, required ones (principal, action, service,
    /// account) empty. What identifies the event (id, tenant, source, kind, time) is kept: it is
    /// not the tenant's to erase. Returns the pointers that removed something.
    pub fn apply_to_event(&self, event: &mut Event) -> Vec<String> {
        let mut erased = Vec::new();
        for p in &self.0 {
            let hit = match p.path.split_first() {
                Some((top, rest)) if top == "raw" && rest.is_empty() => {
                    !std::mem::take(&mut event.raw).is_null()
                }
                Some((top, rest)) if top == "raw" => {
                    let hit = lookup(&event.raw, rest).is_some();
                    remove(&mut event.raw, rest);
                    hit
                }
                Some((top, [])) if top == "event" => {
                    // The whole object: every field the tenant may erase (each one, so no
                    // short-circuiting `any`).
                    let mut hit = false;
                    for f in EVENT_FIELDS {
                        hit |= erase_event_field(event, f);
                    }
                    hit
                }
                Some((top, [field])) if top == "event" => erase_event_field(event, field),
                _ => false,
            };
            if hit {
                erased.push(p.text.clone());
            }
        }
        erased
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

/// The normalized fields of an event a mask may erase; the others identify the event.
const EVENT_FIELDS: [&str; 6] = [
    "principal",
    "action",
    "service",
    "resource",
    "source_ip",
    "account",
];

/// Erases one normalized field (optional ones become absent, required ones empty); whether it
/// held anything.
fn erase_event_field(event: &mut Event, field: &str) -> bool {
    match field {
        "resource" => event.resource.take().is_some(),
        "source_ip" => event.source_ip.take().is_some(),
        "principal" => !std::mem::take(&mut event.principal).is_empty(),
        "action" => !std::mem::take(&mut event.action).is_empty(),
        "service" => !std::mem::take(&mut event.service).is_empty(),
        "account" => !std::mem::take(&mut event.account).is_empty(),
        _ => false,
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
    fn masks_what_is_kept_of_an_event_but_not_what_identifies_it() {
        use crate::{EventKind, Source, TenantId};
        let mut event = Event {
            event_id: "e1".into(),
            tenant_id: TenantId::parse("acme").unwrap(),
            source: Source::Kafka,
            kind: EventKind::Cloudtrail,
            event_time: chrono::Utc::now(),
            principal: "arn:aws:iam::1:user/alice".into(),
            action: "ConsoleLogin".into(),
            service: "signin.amazonaws.com".into(),
            resource: Some("r".into()),
            source_ip: Some("203.0.113.7".into()),
            account: "1".into(),
            raw: json!({"userIdentity": {"arn": "a", "accessKeyId": "k"}, "items": [1, 2]}),
        };
        let before = event.clone();
        let m = mask(&[
            "/input/raw/userIdentity/accessKeyId",
            "/input/raw/items/0",
            "/input/raw/absent",
            "/input/event/source_ip",
            "/input/event/principal",
            "/input/event/id",
            "/input/event/time",
            "/input/subject/token",
        ]);
        let erased = m.apply_to_event(&mut event);
        assert_eq!(
            erased,
            [
                "/input/raw/userIdentity/accessKeyId",
                "/input/raw/items/0",
                "/input/event/source_ip",
                "/input/event/principal"
            ]
        );
        assert_eq!(
            event.raw,
            json!({"userIdentity": {"arn": "a"}, "items": [null, 2]})
        );
        assert_eq!(
            (event.source_ip.as_deref(), event.principal.as_str()),
            (None, "")
        );
        assert_eq!(
            (
                &event.event_id,
                event.event_time,
                &event.action,
                &event.resource
            ),
            (
                &before.event_id,
                before.event_time,
                &before.action,
                &before.resource
            )
        );
        // The whole record at once, and every normalized field the tenant may erase.
        assert_eq!(
            mask(&["/input/raw", "/input/event"]).apply_to_event(&mut event),
            ["/input/raw", "/input/event"]
        );
        assert!(event.raw.is_null());
        assert_eq!(
            (&event.action, &event.resource, &event.event_id),
            (&String::new(), &None, &before.event_id)
        );
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
