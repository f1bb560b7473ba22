"""`hostrelay`: the operator CLI of the hostrelay HTTP API."""
