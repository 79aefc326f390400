using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Envio.Messaging;
using Envio.Contracts.Orders;

namespace Envio.Tests.Support;

/// <summary>
/// A steady stream of single-order POSTs, as clients would send them, recording what the API answered: accepted
/// (202: must be stored exactly once), refused (503: the client would retry) and unknown (no answer: the order may
/// or may not have reached the broker, so it may be stored, but never twice).
/// </summary>
public sealed class OrderStream : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _workers;
    private int _next;

    public ConcurrentDictionary<Guid, Order> Accepted { get; } = new();

    public ConcurrentDictionary<Guid, Order> Refused { get; } = new();

    public ConcurrentDictionary<Guid, Order> Unknown { get; } = new();

    private OrderStream(HttpClient api, int workers, TimeSpan pause, int seed)
    {
        _next = seed;
        _workers = Enumerable.Range(0, workers).Select(_ => Task.Run(() => PostLoopAsync(api, pause))).ToList();
    }

    public static OrderStream Start(HttpClient api, int seed, int workers = 4, TimeSpan? pause = null) =>
        new(api, workers, pause ?? TimeSpan.FromMilliseconds(10), seed);

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_workers);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    public IReadOnlyList<Guid> AcceptedIds => [.. Accepted.Keys];

    public string Summary => $"accepted {Accepted.Count}, refused {Refused.Count} (503), unanswered {Unknown.Count}";

    private async Task PostLoopAsync(HttpClient api, TimeSpan pause)
    {
        while (!_stop.IsCancellationRequested)
        {
            var order = SampleOrders.Create(Interlocked.Increment(ref _next), items: 1 + _next % 4);
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                using var response = await api.PostAsJsonAsync("/api/orders", order, WireFormat.Options, timeout.Token);
                var outcome = response.StatusCode switch
                {
                    HttpStatusCode.Accepted => Accepted,
                    HttpStatusCode.ServiceUnavailable => Refused,
                    _ => throw new InvalidOperationException($"Unexpected {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}"),
                };
                outcome[order.OrderId] = order;
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                Unknown[order.OrderId] = order;
            }
            try
            {
                await Task.Delay(pause, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
