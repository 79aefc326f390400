namespace Envio.ConsumerService.Persistence;

/// <summary>
/// Applies the store's migrations before the consumer takes its first message: hosted services start in order, and
/// this one is registered before the consumer.
/// </summary>
public sealed class DatabaseMigrator(IOrderStore store) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => store.MigrateAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
