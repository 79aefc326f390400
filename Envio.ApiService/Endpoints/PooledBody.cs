using System.Buffers;
using Microsoft.AspNetCore.Http.Features;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// A request body read into buffers rented from the shared pool and returned on dispose: a batch body of half a
/// megabyte would otherwise be new large-object-heap arrays (its doublings) per request, which only a full collection
/// frees. The buffer grows with what arrives (doubling), never with the length a client declares, so slow requests
/// that announce 16 MiB and send a trickle hold a trickle each. Buffers above <see cref="MaxPooledSize"/> are plain
/// arrays, so that a burst of huge bodies leaves nothing behind in the pool.
/// </summary>
internal sealed class PooledBody : IDisposable
{
    /// <summary>A batch of 1,000 typical orders (~600 KB) fits.</summary>
    private const int MaxPooledSize = 1024 * 1024;

    private const int FirstReadSize = 64 * 1024;

    private byte[] _buffer;
    private int _length;

    private PooledBody(int initialSize) => _buffer = Rent(initialSize);

    /// <summary>200 when the whole body is here; 413 when it is longer than allowed; 408 when it came too slowly.</summary>
    public int Status { get; private set; } = StatusCodes.Status200OK;

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, _length);

    /// <summary>
    /// The body; 413 when it is longer than <paramref name="maxBytes"/> (then read no further than that), 408 when it
    /// did not arrive within <paramref name="readTimeout"/> or fast enough for Kestrel.
    /// </summary>
    public static async Task<PooledBody> ReadAtMostAsync(HttpContext context, long maxBytes, TimeSpan readTimeout)
    {
        if (context.Request.ContentLength > maxBytes)
        {
            return new PooledBody(0) { Status = StatusCodes.Status413PayloadTooLarge };
        }
        // One byte more than declared, so that reading to the end needs no bigger buffer.
        var body = new PooledBody((int)Math.Min((context.Request.ContentLength ?? 4095) + 1, FirstReadSize));
        // The server itself stops a body (also a chunked one) at the limit, so an endless body costs nothing.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = maxBytes;
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(readTimeout);
        try
        {
            int read;
            while ((read = await context.Request.Body.ReadAsync(body._buffer.AsMemory(body._length), deadline.Token)) > 0)
            {
                body._length += read;
                if (body._length > maxBytes)
                {
                    body.Status = StatusCodes.Status413PayloadTooLarge;
                    return body;
                }
                if (body._length == body._buffer.Length)
                {
                    body.Grow(maxBytes);
                }
            }
        }
        catch (BadHttpRequestException e)
        {
            // 413 from the server's own count, 408 from Kestrel's minimum data rate.
            body.Status = e.StatusCode;
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            body.Status = StatusCodes.Status408RequestTimeout;
        }
        return body;
    }

    // Never beyond one byte over the limit: that byte is enough to tell a body too long.
    private void Grow(long maxBytes)
    {
        var larger = Rent((int)Math.Min(_buffer.Length * 2L, maxBytes + 1));
        _buffer.AsSpan(0, _length).CopyTo(larger);
        Return(_buffer, _length);
        _buffer = larger;
    }

    public void Dispose()
    {
        Return(_buffer, _length);
        (_buffer, _length) = ([], 0);
    }

    private static byte[] Rent(int size) => size <= MaxPooledSize ? ArrayPool<byte>.Shared.Rent(size) : new byte[size];

    // Orders in plaintext do not outlive their request in a pooled array that other code rents next.
    private static void Return(byte[] buffer, int used)
    {
        if (buffer.Length is > 0 and <= MaxPooledSize)
        {
            buffer.AsSpan(0, used).Clear();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
