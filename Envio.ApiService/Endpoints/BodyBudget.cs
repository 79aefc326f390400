using System.Threading.RateLimiting;
using Envio.ApiService.Security;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// The request-body bytes the API holds at once, across every client (<see cref="ApiOptions.MaxBodyBytesInFlight"/>):
/// each client's concurrency cap alone lets a few clients with large batches fill the process's memory limit. A body
/// takes its share before it is read (its declared length, or the endpoint's limit when it declares none, which a
/// body cannot exceed) and gives it back when the request ends. A request that finds the budget spent waits for up to
/// <see cref="ApiOptions.BodyBudgetWait"/>, in arrival order, then is answered 503 with Retry-After.
/// </summary>
public sealed class BodyBudget(IOptions<ApiOptions> options) : IDisposable
{
    private const int BytesPerPermit = 1024;

    private readonly ConcurrencyLimiter _limiter = new(new ConcurrencyLimiterOptions
    {
        PermitLimit = Permits(options.Value.MaxBodyBytesInFlight),
        QueueLimit = Permits(options.Value.MaxBodyBytesInFlight),
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    });

    private readonly TimeSpan _wait = options.Value.BodyBudgetWait;

    /// <summary>A share of <paramref name="bytes"/> (at most the whole budget), or null when none came within the wait.</summary>
    public async Task<RateLimitLease?> TakeAsync(long bytes, CancellationToken cancellationToken)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(_wait);
        try
        {
            var lease = await _limiter.AcquireAsync(Math.Min(Permits(bytes), Permits(options.Value.MaxBodyBytesInFlight)), wait.Token);
            if (lease.IsAcquired)
            {
                return lease;
            }
            lease.Dispose();
            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>The bytes no request holds now.</summary>
    public long AvailableBytes => (_limiter.GetStatistics()?.CurrentAvailablePermits ?? 0) * BytesPerPermit;

    public void Dispose() => _limiter.Dispose();

    private static int Permits(long bytes) => (int)Math.Clamp((bytes + BytesPerPermit - 1) / BytesPerPermit, 1, int.MaxValue);
}
