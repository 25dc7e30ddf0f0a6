//! Tenant registry in Postgres: registration, account ownership, what the engine loads.

use crate::common;
use crate::common::TestEnv;
use portcullis::runtime::block_on;
use portcullis::sinks::postgres::{add_tenant, list_tenants, load_registry, RegistryError};
use portcullis_engine::TenantId;

#[test]
fn accounts_belong_to_exactly_one_tenant() {
    block_on(async {
        let env = TestEnv::new("registry").await;
        let globex = TenantId::parse("globex").unwrap();
        add_tenant(&env.pool, &globex, Some("Globex"), &["222222222222".into()])
            .await
            .unwrap();
        // Idempotent: the same call again changes nothing and keeps the name.
        add_tenant(&env.pool, &globex, None, &["222222222222".into()])
            .await
            .unwrap();
        let err = add_tenant(&env.pool, &globex, None, &[common::ACME_ACCOUNT.into()])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RegistryError::AccountTaken { owner, .. } if owner == "acme"),
            "{err}"
        );
        let err = add_tenant(&env.pool, &globex, None, &["12345".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::BadAccount(_)));

        let rows = list_tenants(&env.pool).await.unwrap();
        let names: Vec<(&str, Option<&str>, Vec<String>)> = rows
            .iter()
            .map(|r| {
                (
                    r.tenant_id.as_str(),
                    r.display_name.as_deref(),
                    r.accounts.clone(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("acme", Some("Acme"), vec![common::ACME_ACCOUNT.to_owned()]),
                ("globex", Some("Globex"), vec!["222222222222".to_owned()]),
            ]
        );
        let reg = load_registry(&env.pool).await.unwrap();
        assert_eq!(reg.tenant_for_account("222222222222"), Some(&globex));
        assert_eq!((reg.tenant_count(), reg.account_count()), (2, 2));
        env.cleanup().await;
    });
}
