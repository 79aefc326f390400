using System.Collections.Concurrent;
using System.Text.Json;

namespace Envio.Tests.Support;

/// <summary>One POST as a client saw it: when it was sent, when the answer came, the status (0: none), the order id.</summary>
public sealed record Answer(DateTime Sent, DateTime Answered, int Status, Guid OrderId);

/// <summary>
/// An HTTP handler that notes the time and outcome of every order POST that passes through it, so that a test can
/// say when the API refused (503) and for how long, and which orders were sent after a given moment.
/// </summary>
public sealed class AnswerLog() : DelegatingHandler(new SocketsHttpHandler())
{
    public ConcurrentQueue<Answer> Answers { get; } = new();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var orderId = request.Content is null ? Guid.Empty : OrderIdOf(await request.Content.ReadAsStringAsync(cancellationToken));
        var sent = DateTime.UtcNow;
        try
        {
            var response = await base.SendAsync(request, cancellationToken);
            Answers.Enqueue(new Answer(sent, DateTime.UtcNow, (int)response.StatusCode, orderId));
            return response;
        }
        catch
        {
            Answers.Enqueue(new Answer(sent, DateTime.UtcNow, 0, orderId));
            throw;
        }
    }

    private static Guid OrderIdOf(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("orderId", out var id)
            ? id.GetGuid()
            : Guid.Empty;
    }
}
