"""The dashboard: a static page served by the bridge at /dashboard and its endpoints."""
