"""Staff: accounts and HTTP basic auth (``auth``), the staff REST API (``api``, ``/api/v1/staff``) and the
dashboard's pages (``dashboard``, ``/staff``)."""
