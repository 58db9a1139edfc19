/** The event bus port. */
package io.tidemark.core.bus;
