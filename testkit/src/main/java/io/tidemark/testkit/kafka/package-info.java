/**
 * A Kafka cluster of several KRaft nodes, each a JVM of its own that a test or the topology bench
 * kills with SIGKILL and starts again on its data ({@link io.tidemark.testkit.kafka.LocalKafkaCluster}).
 */
package io.tidemark.testkit.kafka;
