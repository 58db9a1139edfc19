/** The storage port: {@link io.tidemark.core.target.ObjectTarget} and its contract. */
package io.tidemark.core.target;
