namespace Envio.ApiService.Endpoints;

/// <summary>How the OpenAPI document and the interactive reference introduce the API to the people who call it.</summary>
public static class ApiReference
{
    public const string Title = "Envio API";

    public const string Description =
        "Accepts orders and hands them to RabbitMQ; a consumer stores each exactly once in the database. " +
        "`202 Accepted` means the broker confirmed every order of the request; `503` (with `Retry-After` and the " +
        "`orderIds` it tried) means resend later with the same ids. Send one order to `POST /api/orders`, or up to " +
        "1,000 to `POST /api/orders/batch`. Every call needs a bearer token: the scope `envio.send` for orders, " +
        "`envio.admin` for the error queue. In development: " +
        "`dotnet user-jwts create --project Envio.ApiService --scope envio.send` (README, \"Sending an order\").";
}
