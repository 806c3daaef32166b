// Package contrib is the root of the integrations module: packages that
// connect qorb pools to other libraries (a PostgreSQL driver, metrics
// systems, a terminal view) and so bring dependencies that the core module
// keeps out. Import the package you need; this one holds no code.
package contrib
