/** The event bus on Kafka, and the embedded single-node KRaft broker of the embedded default. */
package io.tidemark.kafka;
