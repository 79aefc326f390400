using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Envio.ApiService.Security;
using Microsoft.AspNetCore.Http.Features;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// Reads a JSON request body as hostile input: the wrong content type is 415, more bytes than the limit 413 (read
/// no further), a body that takes too long 408, arrays longer than the contract allows and JSON that does not fit
/// the contract 400, each as problem details. Nothing reaches the validator, let alone the broker, that has not passed
/// all of these. Memory follows the bytes that arrived, never the length a client declares.
/// </summary>
internal static class RequestBody
{
    public static async Task<(T? Value, IResult? Problem)> ReadJsonAsync<T>(
        HttpContext context, JsonTypeInfo<T> typeInfo, long maxBytes, string limitSetting, int maxArrayLength, string rootArrayError,
        TimeSpan readTimeout)
    {
        if (!context.Request.HasJsonContentType())
        {
            return (default, Results.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "The body must be JSON.", detail: "Send Content-Type: application/json."));
        }

        var (body, status) = await ReadAtMostAsync(context, maxBytes, readTimeout);
        if (status == StatusCodes.Status413PayloadTooLarge)
        {
            return (default, Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "The body is too large.", detail: $"This endpoint reads at most {maxBytes} bytes ({limitSetting})."));
        }
        if (body is null)
        {
            return (default, Results.Problem(statusCode: status, title: "The body did not arrive in time.",
                detail: $"Send the whole body within {readTimeout.TotalSeconds:0} s ({ApiOptions.SectionName}:{nameof(ApiOptions.BodyReadTimeout)}), " +
                    $"at no less than the minimum rate ({ApiOptions.SectionName}:{nameof(ApiOptions.MinBodyBytesPerSecond)})."));
        }

        if (JsonShape.FirstArrayLongerThan(body.Value.Span, maxArrayLength) is { } path)
        {
            return (default, Results.ValidationProblem(
                new Dictionary<string, string[]>
                {
                    [path.Length == 0 ? "$" : path] = [path.Length == 0 ? rootArrayError : $"An array holds at most {maxArrayLength} elements."],
                },
                title: "The body is not valid JSON for this endpoint."));
        }

        try
        {
            return (JsonSerializer.Deserialize(body.Value.Span, typeInfo), null);
        }
        catch (JsonException e)
        {
            return (default, Results.ValidationProblem(
                new Dictionary<string, string[]> { [e.Path ?? "$"] = [JsonError(e)] },
                title: "The body is not valid JSON for this endpoint."));
        }
    }

    /// <summary>
    /// The body; or null with 413 when it is longer than <paramref name="maxBytes"/> (then read no further than that),
    /// with 408 when it did not arrive within <paramref name="readTimeout"/> or fast enough for Kestrel.
    /// </summary>
    private static async Task<(ReadOnlyMemory<byte>? Body, int Status)> ReadAtMostAsync(HttpContext context, long maxBytes, TimeSpan readTimeout)
    {
        if (context.Request.ContentLength > maxBytes)
        {
            return (null, StatusCodes.Status413PayloadTooLarge);
        }
        // The server itself stops a body (also a chunked one) at the limit, so an endless body costs nothing.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = maxBytes;
        }
        // Grows with what arrives (doubling): a declared Content-Length reserves nothing, so slow requests that announce
        // 16 MiB and send a trickle hold a trickle each.
        using var buffer = new MemoryStream((int)Math.Min(context.Request.ContentLength ?? 4096, 64 * 1024));
        var chunk = new byte[16 * 1024];
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(readTimeout);
        try
        {
            int read;
            while ((read = await context.Request.Body.ReadAsync(chunk, deadline.Token)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    return (null, StatusCodes.Status413PayloadTooLarge);
                }
                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException e)
        {
            // 413 from the server's own count, 408 from Kestrel's minimum data rate.
            return (null, e.StatusCode);
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            return (null, StatusCodes.Status408RequestTimeout);
        }
        return (buffer.GetBuffer().AsMemory(0, (int)buffer.Length), StatusCodes.Status200OK);
    }

    // The serializer's message names .NET types; the client needs the place and the gist.
    private static string JsonError(JsonException e) =>
        e.Message.Split(" Path:", 2)[0].Replace("System.", "", StringComparison.Ordinal);
}
