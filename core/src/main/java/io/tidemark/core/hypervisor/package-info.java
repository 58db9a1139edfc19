/** The capture port: {@link io.tidemark.core.hypervisor.Hypervisor} and the records it exchanges. */
package io.tidemark.core.hypervisor;
