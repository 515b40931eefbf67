// Jest setup for the "postgres" project: the shared e2e suite runs again on PostgreSQL.
process.env.TEST_DATABASE = 'postgres';
