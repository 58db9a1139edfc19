package io.tidemark.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class GroupMembersTest {

    private static String machine() throws Exception {
        return java.net.InetAddress.getLocalHost().getHostName();
    }

    @Test
    void aMemberOfAProcessOfThisMachineThatEndedIsNotWaitedFor() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        String dead = "tidemark-" + machine() + "-pid" + p.pid() + " at /127.0.0.1";
        String alive =
                "tidemark-" + machine() + "-pid" + ProcessHandle.current().pid() + " at /127.0.0.1";
        assertThat(KafkaEventBus.deadProcessOfThisMachine(dead)).isTrue();
        assertThat(KafkaEventBus.deadProcessOfThisMachine(alive)).isFalse();
        // another machine's process cannot be checked from here: it is waited for
        assertThat(KafkaEventBus.deadProcessOfThisMachine("tidemark-elsewhere-pid" + p.pid() + " at /10.0.0.9"))
                .isFalse();
        assertThat(KafkaEventBus.deadProcessOfThisMachine("console-consumer at /127.0.0.1"))
                .isFalse();
    }
}
