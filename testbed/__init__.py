"""What the tests and the benchmark share: throwaway PostgreSQL databases and real ``goticket
serve`` processes. Development tooling only: the installed package never imports it."""
