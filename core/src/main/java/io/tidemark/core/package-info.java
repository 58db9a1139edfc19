/**
 * Tidemark's core: the domain model, the ports every adapter implements, and the two error kinds
 * ({@link io.tidemark.core.RetriableException}, {@link io.tidemark.core.PermanentException}).
 * This module holds no adapter code and depends on nothing but slf4j.
 */
package io.tidemark.core;
