/// A tenant the demo registers, with the AWS accounts that belong to it.
pub struct DemoTenant {
    pub id: &'static str,
    pub name: &'static str,
    pub accounts: &'static [&'static str],
    pub agents: &'static [&'static str],
}

/// Policies for these live in `policies/tenants/{id}/`.
pub const DEMO_TENANTS: &[DemoTenant] = &[
    DemoTenant {
        id: "acme",
        name: "Acme Corp",
        accounts: &["111111111111", "111111111122"],
        agents: &[
            "acme-laptop-01",
            "acme-laptop-02",
            "acme-gw-eu-1",
            "acme-gw-us-1",
        ],
    },
    DemoTenant {
        id: "globex",
        name: "Globex",
        accounts: &["222222222222"],
        agents: &["globex-ws-01", "globex-ws-02", "globex-edge-1"],
    },
    DemoTenant {
        id: "initech",
        name: "Initech",
        accounts: &["333333333333", "333333333344"],
        agents: &["initech-pc-01", "initech-pc-02", "initech-kiosk"],
    },
];
