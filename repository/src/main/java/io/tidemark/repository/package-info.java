/**
 * The repository: storing chunks, building two-level indexes whose pages are content-addressed,
 * committing manifests last, and restoring images. See docs/design.md for the format.
 */
package io.tidemark.repository;
