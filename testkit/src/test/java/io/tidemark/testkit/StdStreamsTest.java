package io.tidemark.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

/**
 * A concurrent test class runs beside the other classes of its module: its per-thread captures and
 * another class's whole-process capture are active at once, and each must get its own output (CI
 * once saw a concurrent class's command output vanish into a neighbour's capture).
 */
class StdStreamsTest {

    @Test
    void perThreadAndWholeProcessCapturesRunningAtOnceEachGetTheirOwnOutput() throws Exception {
        StdStreams whole = new StdStreams();
        StdStreams first = StdStreams.perThread();
        StdStreams second = StdStreams.perThread();
        CountDownLatch bothStarted = new CountDownLatch(2);
        CountDownLatch wholeStarted = new CountDownLatch(1);
        CountDownLatch printed = new CountDownLatch(3);
        CountDownLatch checked = new CountDownLatch(1);
        Thread a = perThreadTest(first, "first", bothStarted, wholeStarted, printed, checked);
        Thread b = perThreadTest(second, "second", bothStarted, wholeStarted, printed, checked);
        a.start();
        b.start();
        bothStarted.await();
        whole.beforeEach(null);
        wholeStarted.countDown();
        System.out.println("whole"); // this thread belongs to no per-thread test
        Thread pooled = new Thread(() -> System.err.println("whole, another thread"));
        pooled.start();
        pooled.join();
        printed.countDown();
        printed.await();
        assertThat(first.out()).isEqualTo("first\nfirst, a thread it started\n");
        assertThat(first.err()).isEqualTo("first err\n");
        assertThat(second.out()).isEqualTo("second\nsecond, a thread it started\n");
        assertThat(whole.out()).isEqualTo("whole\n");
        assertThat(whole.err()).isEqualTo("whole, another thread\n");
        checked.countDown();
        a.join();
        b.join();
        whole.afterEach(null);
        System.out.println("after every capture ended"); // to the real stream
        assertThat(whole.out()).isEqualTo("whole\n");
    }

    private static Thread perThreadTest(
            StdStreams std,
            String name,
            CountDownLatch bothStarted,
            CountDownLatch wholeStarted,
            CountDownLatch printed,
            CountDownLatch checked) {
        return new Thread(() -> {
            std.beforeEach(null);
            try {
                bothStarted.countDown();
                wholeStarted.await();
                System.out.println(name);
                System.err.println(name + " err");
                Thread child = new Thread(() -> System.out.println(name + ", a thread it started"));
                child.start();
                child.join();
                printed.countDown();
                checked.await();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            } finally {
                std.afterEach(null);
            }
        });
    }
}
