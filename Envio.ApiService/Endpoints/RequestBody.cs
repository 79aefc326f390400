using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Envio.ApiService.Security;

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

        // A share of the bytes every request's body holds at once, before reading any (a body declared longer than
        // the limit is refused below and takes none).
        var declaredTooLong = context.Request.ContentLength > maxBytes;
        using var share = declaredTooLong ? null : await context.RequestServices.GetRequiredService<BodyBudget>()
            .TakeAsync(Math.Min(context.Request.ContentLength ?? maxBytes, maxBytes), context.RequestAborted);
        if (!declaredTooLong && share is null)
        {
            context.Response.Headers.RetryAfter = "1";
            return (default, Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable,
                title: "The API is reading as many bodies as it can hold.",
                detail: $"Retry after 1 s. Every client's bodies in flight share one budget ({ApiOptions.SectionName}:{nameof(ApiOptions.MaxBodyBytesInFlight)})."));
        }
        using var body = await PooledBody.ReadAtMostAsync(context, maxBytes, readTimeout);
        if (body.Status == StatusCodes.Status413PayloadTooLarge)
        {
            return (default, Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "The body is too large.", detail: $"This endpoint reads at most {maxBytes} bytes ({limitSetting})."));
        }
        if (body.Status != StatusCodes.Status200OK)
        {
            return (default, Results.Problem(statusCode: body.Status, title: "The body did not arrive in time.",
                detail: $"Send the whole body within {readTimeout.TotalSeconds:0} s ({ApiOptions.SectionName}:{nameof(ApiOptions.BodyReadTimeout)}), " +
                    $"at no less than the minimum rate ({ApiOptions.SectionName}:{nameof(ApiOptions.MinBodyBytesPerSecond)})."));
        }

        if (JsonShape.FirstArrayLongerThan(body.Span, maxArrayLength) is { } path)
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
            return (JsonSerializer.Deserialize(body.Span, typeInfo), null);
        }
        catch (JsonException e)
        {
            return (default, Results.ValidationProblem(
                new Dictionary<string, string[]> { [e.Path ?? "$"] = [JsonError(e)] },
                title: "The body is not valid JSON for this endpoint."));
        }
    }

    // The serializer's message names .NET types; the client needs the place and the gist.
    private static string JsonError(JsonException e) =>
        e.Message.Split(" Path:", 2)[0].Replace("System.", "", StringComparison.Ordinal);
}
