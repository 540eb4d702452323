-- A tenant's administrator subscribes webhooks to the tenant's credit
-- changes, as an organisation's reader does to the organisation's: a
-- webhook belongs to an organisation (org) or to a tenant (tenant), the
-- other one empty.
ALTER TABLE webhooks ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
