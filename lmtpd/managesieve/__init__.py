"""ManageSieve (RFC 5804): users manage their own Sieve scripts over the network."""
