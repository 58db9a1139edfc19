/**
 * The long-lived formats: the event envelope, the repository config, manifests, index pages and
 * roots, object framing and the key layout. Golden files under the tests must parse forever.
 */
package io.tidemark.format;
