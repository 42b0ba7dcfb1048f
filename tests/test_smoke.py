def test_a_created_agent_can_be_read_back(client, create_agent):
    agent = create_agent()
    response = client.get(f"/agents/{agent['id']}")
    assert response.status_code == 200
    assert response.get_json() == {"agent": agent}
