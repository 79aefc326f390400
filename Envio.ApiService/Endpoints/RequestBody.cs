using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Features;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// Reads a JSON request body as hostile input: the wrong content type is 415, more bytes than the limit 413 (read
/// no further), arrays longer than the contract allows and JSON that does not fit the contract 400, each as problem
/// details. Nothing reaches the validator, let alone the broker, that has not passed all of these.
/// </summary>
internal static class RequestBody
{
    public static async Task<(T? Value, IResult? Problem)> ReadJsonAsync<T>(
        HttpContext context, JsonTypeInfo<T> typeInfo, long maxBytes, string limitSetting, int maxArrayLength, string rootArrayError)
    {
        if (!context.Request.HasJsonContentType())
        {
            return (default, Results.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "The body must be JSON.", detail: "Send Content-Type: application/json."));
        }

        var body = await ReadAtMostAsync(context, maxBytes);
        if (body is null)
        {
            return (default, Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "The body is too large.", detail: $"This endpoint reads at most {maxBytes} bytes ({limitSetting})."));
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

    /// <summary>The body, or null when it is longer than <paramref name="maxBytes"/> (then read no further than that).</summary>
    private static async Task<ReadOnlyMemory<byte>?> ReadAtMostAsync(HttpContext context, long maxBytes)
    {
        if (context.Request.ContentLength > maxBytes)
        {
            return null;
        }
        // The server itself stops a body (also a chunked one) at the limit, so an endless body costs nothing.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = maxBytes;
        }
        using var buffer = new MemoryStream((int)Math.Min(context.Request.ContentLength ?? 4096, maxBytes));
        var chunk = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    return null;
                }
                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return null;
        }
        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }

    // The serializer's message names .NET types; the client needs the place and the gist.
    private static string JsonError(JsonException e) =>
        e.Message.Split(" Path:", 2)[0].Replace("System.", "", StringComparison.Ordinal);
}
