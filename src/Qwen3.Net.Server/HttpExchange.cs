using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace Qwen3.Net.Server;

/// <summary>What every endpoint does with a request and its response: the API key, the bounded body, JSON answers.</summary>
internal static class HttpExchange
{
    /// <summary>Throws a 401 unless the request carries <c>Authorization: Bearer</c> with <paramref name="apiKey"/> (when one is set).</summary>
    public static void Authorize(HttpContext http, byte[]? apiKey)
    {
        if (apiKey is null)
        {
            return;
        }

        string header = http.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        bool ok = header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) &&
            CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()), apiKey);
        if (!ok)
        {
            throw new OpenAIException(StatusCodes.Status401Unauthorized, "Missing or wrong API key: send Authorization: Bearer <key>.", "invalid_request_error", null, "invalid_api_key");
        }
    }

    /// <summary>Reads the body up to <paramref name="limit"/> bytes, whatever Kestrel's own limit is.</summary>
    public static async Task<ReadOnlyMemory<byte>> ReadBodyAsync(HttpContext http, int limit)
    {
        var tooLarge = new OpenAIException(StatusCodes.Status413PayloadTooLarge, $"The request body exceeds {limit} bytes.", "invalid_request_error", null, "request_too_large");
        if (http.Request.ContentLength > limit)
        {
            throw tooLarge;
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = limit + 1L;
        }

        var buffer = new MemoryStream();
        var chunk = new byte[16384];
        try
        {
            int read;
            while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > limit)
                {
                    throw tooLarge;
                }

                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException e)
        {
            throw e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? tooLarge
                : new OpenAIException(e.StatusCode, $"Bad request body: {e.Message}", "invalid_request_error");
        }

        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }

    public static Task WriteErrorAsync(HttpContext http, OpenAIException e) => WriteJsonAsync(http, e.Status, TurnAccumulator.Write(e.WriteTo));

    public static async Task WriteJsonAsync(HttpContext http, int status, byte[] json)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = json.Length;
        await http.Response.Body.WriteAsync(json, http.RequestAborted).ConfigureAwait(false);
    }
}
