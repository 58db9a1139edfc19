package io.tidemark.targets.s3;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.UnaryOperator;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.http.SdkHttpRequest;

/** Records the HTTP requests a client sends, as signed, and can tamper with them before signing. */
final class RecordingInterceptor implements ExecutionInterceptor {

    private final List<SdkHttpRequest> sent = new CopyOnWriteArrayList<>();
    private volatile UnaryOperator<SdkHttpRequest> tamper = UnaryOperator.identity();

    /** Applies {@code tamper} to every later request before it is signed. */
    void tamperWith(UnaryOperator<SdkHttpRequest> tamper) {
        this.tamper = tamper;
    }

    /** The requests sent so far, in order. */
    List<SdkHttpRequest> sent() {
        return List.copyOf(sent);
    }

    /** The last request sent with {@code method}. */
    SdkHttpRequest last(String method) {
        for (int i = sent.size() - 1; i >= 0; i--) {
            if (sent.get(i).method().name().equals(method)) {
                return sent.get(i);
            }
        }
        throw new AssertionError("no " + method + " request was sent; sent: " + sent);
    }

    @Override
    public SdkHttpRequest modifyHttpRequest(Context.ModifyHttpRequest context, ExecutionAttributes attributes) {
        return tamper.apply(context.httpRequest());
    }

    @Override
    public void beforeTransmission(Context.BeforeTransmission context, ExecutionAttributes attributes) {
        sent.add(context.httpRequest());
    }
}
