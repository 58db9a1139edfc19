/** The events of the flow, as domain records free of wire annotations. */
package io.tidemark.core.event;
