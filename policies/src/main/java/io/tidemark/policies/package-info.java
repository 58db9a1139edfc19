/**
 * The policy language: YAML files kept in git that say which VMs to snapshot, how often, how
 * consistently, and where the restore points must be replicated.
 *
 * <p>{@link io.tidemark.policies.PolicyParser} turns files into immutable {@link
 * io.tidemark.policies.Policy} records, or fails with one {@link io.tidemark.policies.PolicyException}
 * that lists every problem found, each with file, line, column and key path. The records carry no
 * YAML; the language reference is {@code docs/policy-reference.md}.
 */
package io.tidemark.policies;
