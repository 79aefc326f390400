namespace Envio.ApiService.Endpoints;

/// <summary>How the OpenAPI document and the interactive reference introduce the API to the people who call it.</summary>
public static class ApiReference
{
    public const string Title = "Envio API";

    public const string Description =
        "Accepts data objects (orders, payments, and whatever else is registered) and hands them to RabbitMQ; a consumer " +
        "stores each exactly once in the database. `202 Accepted` means the broker confirmed every object of the request; " +
        "`503` (with `Retry-After` and the ids it tried, such as `orderIds`) means resend later with the same ids. Send " +
        "one object to `POST /api/{plural}`, or up to 1,000 to `POST /api/{plural}/batch`. Every call needs a bearer " +
        "token: the scope `envio.send` for every type (or `envio.send.{plural}` for one), `envio.admin` for the error " +
        "queues and the consumers. In development: " +
        "`dotnet user-jwts create --project Envio.ApiService --scope envio.send` (README, \"Sending an order\").";
}
