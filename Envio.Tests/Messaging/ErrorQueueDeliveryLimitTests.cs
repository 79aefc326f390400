using System.Text.Json;
using Envio.ApiService.Endpoints;
using Envio.ApiService.Messaging;
using Envio.Messaging;
using Envio.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.Tests.Messaging;

/// <summary>
/// When reading an error queue would spend its messages' delivery limit (RabbitMQ 4.0–4.2 with the queue declared
/// otherwise than Envio does), the admin calls refuse and print the policy. RabbitMQ 4.x cannot run here: the decision
/// is tested from the version and what the declaration found; the listing itself runs on 3.10 in ErrorQueueAdminTests.
/// </summary>
public sealed class ErrorQueueDeliveryLimitTests
{
    private static readonly QueueNames OrderNames = Orders.Names(new TopologyOptions());

    [Theory]
    [InlineData("4.0.9")]
    [InlineData("4.1.4")]
    [InlineData("4.2.0-rc.1")]
    public void On_4_0_to_4_2_an_error_queue_declared_otherwise_is_refused_with_the_policy_command(string version)
    {
        var refusal = ErrorQueueDeliveryLimit.Assess(BrokerVersion.Parse(version), OrderNames, declaredAsEnvioDoes: false, raisedByPolicy: false);

        Assert.NotNull(refusal);
        Assert.Equal("envio.orders.error", refusal.Queue);
        Assert.Equal(
            """rabbitmqctl set_policy --vhost <vhost> --apply-to quorum_queues envio-error-queue-order '^envio\.orders\.error$' '{"delivery-limit":1000000}'""",
            refusal.Command);
        Assert.Contains("Envio__ErrorQueue__DeliveryLimitRaisedByPolicy=true", refusal.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("3.10.8", false)] // no default limit: no declaration needed
    [InlineData("3.13.7", false)]
    [InlineData("4.3.0", false)]  // a basic.nack does not count
    [InlineData("5.0.0", false)]
    [InlineData("4.0.9", true)]
    [InlineData("4.2.3", true)]
    public void Only_4_0_to_4_2_need_the_check(string version, bool needed)
    {
        Assert.Equal(needed, ErrorQueueDeliveryLimit.NeedsCheck(BrokerVersion.Parse(version), raisedByPolicy: false));
        Assert.Null(ErrorQueueDeliveryLimit.Assess(BrokerVersion.Parse(version), OrderNames, declaredAsEnvioDoes: needed ? true : false, raisedByPolicy: false));
    }

    [Fact]
    public void An_operator_who_set_the_policy_is_believed()
    {
        var broker = BrokerVersion.Parse("4.1.0");
        Assert.False(ErrorQueueDeliveryLimit.NeedsCheck(broker, raisedByPolicy: true));
        Assert.Null(ErrorQueueDeliveryLimit.Assess(broker, OrderNames, declaredAsEnvioDoes: false, raisedByPolicy: true));
    }

    [Fact]
    public void Each_type_gets_a_policy_of_its_own()
    {
        var payments = new TopologyOptions().NamesOf(Envio.Contracts.DataObjectTypes.Registered.ByName("payment")!);
        var refusal = ErrorQueueDeliveryLimit.Assess(BrokerVersion.Parse("4.0.0"), payments, declaredAsEnvioDoes: false, raisedByPolicy: false)!;
        Assert.Contains(@"envio-error-queue-payment '^envio\.payments\.error$'", refusal.Command, StringComparison.Ordinal);
    }

    /// <summary>What the operator gets instead of a listing: a 409 problem naming the queue, with the command to run.</summary>
    [Fact]
    public async Task A_refused_read_answers_409_problem_details_with_the_command()
    {
        var services = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();
        var context = new DefaultHttpContext { RequestServices = services };
        context.Response.Body = new MemoryStream();
        var refusal = ErrorQueueDeliveryLimit.Assess(BrokerVersion.Parse("4.1.0"), OrderNames, declaredAsEnvioDoes: false, raisedByPolicy: false)!;

        var result = await ErrorQueueEndpoints.BrokerCallAsync(context, () => throw new ErrorQueueReadRefusedException(refusal));
        await result.ExecuteAsync(context);

        Assert.Equal(StatusCodes.Status409Conflict, context.Response.StatusCode);
        Assert.Equal("application/problem+json", context.Response.ContentType);
        context.Response.Body.Position = 0;
        using var problem = await JsonDocument.ParseAsync(context.Response.Body, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(409, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Equal("envio.orders.error", problem.RootElement.GetProperty("queue").GetString());
        Assert.Equal(refusal.Command, problem.RootElement.GetProperty("command").GetString());
        Assert.Contains("Nothing was read", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }
}
