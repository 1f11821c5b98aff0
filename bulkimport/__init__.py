"""bulkimport: governed CSV imports."""
