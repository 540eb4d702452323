package imports

// BuiltinRoles exposes the table of built-in roles to the tests.
func BuiltinRoles() map[string]string { return builtinRoles }
