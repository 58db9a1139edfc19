package io.tidemark.core.concurrent;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.ThreadFactory;
import org.junit.jupiter.api.Test;

class DaemonThreadsTest {

    @Test
    void namedThreadsAreDaemonsWithTheOneName() {
        ThreadFactory f = DaemonThreads.named("probe");
        Thread a = f.newThread(() -> {});
        Thread b = f.newThread(() -> {});
        assertThat(a.isDaemon()).isTrue();
        assertThat(a.getName()).isEqualTo("probe");
        assertThat(b.getName()).isEqualTo("probe");
    }

    @Test
    void numberedThreadsAreDaemonsNumberedInCreationOrderPerFactory() {
        ThreadFactory f = DaemonThreads.numbered("hook-http-");
        assertThat(f.newThread(() -> {}).getName()).isEqualTo("hook-http-1");
        Thread second = f.newThread(() -> {});
        assertThat(second.getName()).isEqualTo("hook-http-2");
        assertThat(second.isDaemon()).isTrue();
        assertThat(DaemonThreads.numbered("other-").newThread(() -> {}).getName())
                .isEqualTo("other-1");
    }
}
