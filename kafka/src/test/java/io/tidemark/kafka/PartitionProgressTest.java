package io.tidemark.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

class PartitionProgressTest {

    @Test
    void theCommittableOffsetIsTheFirstUnfinishedEventWhenEventsFinishOutOfOrder() {
        PartitionProgress p = new PartitionProgress(new TopicPartition("t", 0));
        assertThat(p.committable()).isEmpty();
        p.fetched(5);
        p.fetched(6);
        p.fetched(7);
        assertThat(p.committable()).hasValue(5);
        p.committed(5);
        p.finished(7);
        p.finished(6);
        assertThat(p.committable()).as("5 still runs").isEmpty();
        assertThat(p.unfinished()).isEqualTo(1);
        p.finished(5);
        assertThat(p.committable()).hasValue(8);
        p.committed(8);
        assertThat(p.committable()).isEmpty();
    }
}
